"""Placeholder until the experiments land."""

from __future__ import annotations

import argparse


def handle_exp_show(args: argparse.Namespace) -> int:
    raise NotImplementedError


def handle_exp_diff(args: argparse.Namespace) -> int:
    raise NotImplementedError


def handle_exp_remove(args: argparse.Namespace) -> int:
    raise NotImplementedError
