"""Placeholder until the experiments land."""

from __future__ import annotations

import argparse


def handle_exp_apply(args: argparse.Namespace) -> int:
    raise NotImplementedError


def handle_exp_promote(args: argparse.Namespace) -> int:
    raise NotImplementedError
