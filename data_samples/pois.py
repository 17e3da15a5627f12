"""Points of interest (兴趣点): landmarks plus shops behind door plates."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from shapely.geometry import Point

from data_samples.places import Plate

LANDMARKS = (
    ("大丰区人民政府", "政府机构"),
    ("大丰区城市管理局", "政府机构"),
    ("大丰区人民医院", "医疗"),
    ("大丰区中医院", "医疗"),
    ("大丰区妇幼保健院", "医疗"),
    ("大丰高级中学", "教育"),
    ("大丰实验初级中学", "教育"),
    ("大丰区实验小学", "教育"),
    ("大丰区第二小学", "教育"),
    ("新丰中学", "教育"),
    ("大丰汽车客运站", "交通设施"),
    ("大丰火车站", "交通设施"),
    ("大丰区图书馆", "文化"),
    ("大丰区博物馆", "文化"),
    ("大丰区体育馆", "体育"),
    ("人民公园", "公园广场"),
    ("银杏湖公园", "公园广场"),
    ("市民广场", "公园广场"),
    ("中国银行大丰支行", "金融"),
    ("中国工商银行大丰支行", "金融"),
    ("苏果超市", "商业"),
    ("新华书店", "商业"),
    ("万达广场", "商业"),
    ("大丰区邮政局", "公共服务"),
)
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"  # noqa: E501
SHOP_KINDS = (
    ("面馆", "餐饮"),
    ("饭店", "餐饮"),
    ("早餐店", "餐饮"),
    ("烧烤", "餐饮"),
    ("便利店", "商业"),
    ("超市", "商业"),
    ("水果店", "商业"),
    ("五金店", "商业"),
    ("药房", "医疗"),
    ("理发店", "生活服务"),
    ("洗衣店", "生活服务"),
    ("手机店", "商业"),
    ("茶馆", "餐饮"),
    ("诊所", "医疗"),
    ("烟酒店", "商业"),
)


@dataclass
class PoiFeature:
    """A generated point of interest."""

    code: str
    name: str
    category: str
    point: Point
    address_code: str | None


def build_pois(
    plates: list[Plate], rng: np.random.Generator, shop_share: float
) -> list[PoiFeature]:
    """Landmarks at chosen door plates, and a shop behind a share of the others."""
    doors = [p for p in plates if p.kind == "门牌"]
    picks = rng.choice(len(doors), size=len(LANDMARKS), replace=False)
    out = [
        PoiFeature(f"P{k + 1:05d}", name, cat, _behind(doors[i]), doors[i].code)
        for k, ((name, cat), i) in enumerate(zip(LANDMARKS, picks, strict=True))
    ]
    used = set(int(i) for i in picks)
    seen: set[str] = {p.name for p in out}
    for i, plate in enumerate(doors):
        if i in used or rng.random() >= shop_share:
            continue
        kind, cat = SHOP_KINDS[int(rng.integers(len(SHOP_KINDS)))]
        name = f"{SURNAMES[int(rng.integers(len(SURNAMES)))]}记{kind}"
        if name in seen:
            name = f"{name}({plate.base_name}店)"
        if name in seen:
            continue
        seen.add(name)
        out.append(PoiFeature(f"P{len(out) + 1:05d}", name, cat, _behind(plate), plate.code))
    return out


def _behind(plate: Plate) -> Point:
    """A point 2 m further from the road than the plate (the shop door)."""
    return Point(plate.point.x + 1e-5, plate.point.y + 1e-5)
