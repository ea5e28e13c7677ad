"""The benchmark suite: mlci side by side with make, dvc and tee.

Run ``python -m benchmarks`` (``--quick`` for small sizes); it writes
``docs/benchmarks.md``.
"""
