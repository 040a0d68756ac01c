"""Search: from hashes and embeddings to duplicate pairs and clusters.

Holds the exact Hamming-radius index (``hamming``, laid out by ``hamming_plan``), bit counts
(``popcount``), the BK-tree (``bktree``), cosine search (``cosine``) and the capped cosine
search that keeps each image's nearest candidates (``nearest``), the search cut into
tasks (``tiles``), the incremental search over a store (``incremental``), pair rules (``rules``),
pair verification (``verify``, the rules, over ``maps``, aligned comparisons, and
``registration``, ORB keypoints with RANSAC and template matching; all work on
:class:`imgdedup.imaging.describe.ImageEvidence`, decoded by the caller), verdicts kept in a
store (``verdicts``), batches of pairs with bounded images (``batches``), clustering and keeper
order (``cluster``) and member tiers (``tiers``).

May import: numpy, scipy, networkx, OpenCV (lazily, in ``verify``, ``maps`` and ``registration``), ``imgdedup.config``
and ``imgdedup.storage``. Never Pillow decoding, torch or Prefect.
"""
