"""Placeholder until the experiments land."""

from __future__ import annotations

import argparse


def handle_exp_run(args: argparse.Namespace) -> int:
    raise NotImplementedError


def handle_exp_start(args: argparse.Namespace) -> int:
    raise NotImplementedError


def handle_exp_cancel(args: argparse.Namespace) -> int:
    raise NotImplementedError


def handle_exp_work(args: argparse.Namespace) -> int:
    raise NotImplementedError
