"""Deterministic Chinese personal names for sample staff (inspectors, drivers)."""

from __future__ import annotations

import numpy as np

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国志红玉兰文辉海燕鹏飞斌宇浩凯"


def person_name(rng: np.random.Generator) -> str:
    """A two- or three-character name."""
    surname = SURNAMES[int(rng.integers(len(SURNAMES)))]
    length = 1 + int(rng.random() < 0.7)
    given = "".join(GIVEN[int(rng.integers(len(GIVEN)))] for _ in range(length))
    return surname + given
