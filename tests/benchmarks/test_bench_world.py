"""Throughput of world generation: rays/s and seconds per frame (smoke world, 2 workers)."""
from world_fixtures import smoke_world_config

from vipocc.synthetic.world import synthesize_world


def test_bench_world_generation(benchmark, tmp_path):
    counter = iter(range(1000))

    def generate():
        return synthesize_world(smoke_world_config(), tmp_path / f"w{next(counter)}", workers=2)

    manifest = benchmark.pedantic(generate, rounds=1, iterations=1)
    timing = manifest["timing"]
    benchmark.extra_info.update(rays_per_second=timing["rays_per_second"],
                                seconds_per_frame=timing["seconds_per_frame"], frames=manifest["n_frames"])
    assert timing["rays"] > 0
