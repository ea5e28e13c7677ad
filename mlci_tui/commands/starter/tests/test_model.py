"""The model's tests, run by the `test` stage (plain unittest, no packages)."""

from __future__ import annotations

import tempfile
import unittest
from pathlib import Path

from model import Model, make_data


class ModelTest(unittest.TestCase):
    def test_the_data_is_the_same_for_the_same_seed(self) -> None:
        self.assertEqual(make_data(50, seed=1), make_data(50, seed=1))
        self.assertNotEqual(make_data(50, seed=1), make_data(50, seed=2))

    def test_training_lowers_the_loss(self) -> None:
        samples = make_data(200, seed=0)
        model = Model()
        first = model.step(samples, lr=0.5)
        for _ in range(10):
            last = model.step(samples, lr=0.5)
        self.assertLess(last, first)

    def test_a_saved_model_loads_the_same(self) -> None:
        model = Model((0.5, -1.5), 0.25)
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "model.json"
            model.save(path)
            loaded = Model.load(path)
        self.assertEqual((loaded.weights, loaded.bias), (model.weights, model.bias))


if __name__ == "__main__":
    unittest.main()
