from imgdedup.flows.placement import place_tasks, scheduler_worker_resources


def test_gpu_workers_get_embedding_and_cpu_workers_get_hashing():
    placement = place_tasks([{"CPU": 2}, {"CPU": 1}, {"GPU": 1}])
    assert placement.hash == {"CPU": 1}
    assert placement.embed == {"GPU": 1}


def test_without_gpu_embedding_stays_on_cpu_workers():
    placement = place_tasks([{"CPU": 1}, {"CPU": 1}])
    assert placement.hash == placement.embed == {"CPU": 1}


def test_workers_without_declared_resources_take_anything():
    """A cluster whose workers declare nothing: no annotation, or no task would ever run."""
    placement = place_tasks([{}, {}])
    assert placement.hash is None and placement.embed is None
    only_gpu = place_tasks([{}, {"GPU": 1}])
    assert only_gpu.hash is None and only_gpu.embed == {"GPU": 1}


def test_reads_scheduler_info():
    info = {"workers": {"tcp://a": {"resources": {"CPU": 1}}, "tcp://b": {"resources": {}}, "tcp://c": {}}}
    assert scheduler_worker_resources(info) == [{"CPU": 1}, {}, {}]
