"""Deploying the dedup flow: the commands behind ``imgdedup deploy`` and the deployment tests.

The deployments themselves are defined in ``prefect.yaml`` at the repository
root (an ad-hoc one and a paused nightly incremental one on a ``process``
work pool).
"""
