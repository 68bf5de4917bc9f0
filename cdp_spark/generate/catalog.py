"""The retailer's product catalogue and store list (reference data, identical in every worker).

Example:
    >>> cat = Catalog.build(seed=1)
    >>> cat.skus[0], len(cat.skus) == N_PRODUCTS
    ('SKU-100000', True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from cdp_spark.generate.vocab import (
    CATEGORIES,
    CITIES,
    MODEL_SUFFIXES,
    STORE_NAMES,
    STORE_PLACES,
)

N_PRODUCTS = 1500
# Share of products per category (electronics and clothing have the widest ranges).
_CATEGORY_WEIGHTS = (0.14, 0.14, 0.10, 0.16, 0.07, 0.09, 0.08, 0.10, 0.07, 0.05)


def _psych_price(x: float) -> float:
    # Shelf prices end in 9: 1 234 -> 1 229, 87 -> 89.
    if x < 100:
        return float(max(9, round(x / 10) * 10 - 1))
    return float(round(x / 100) * 100 - 1 if x >= 1000 else round(x / 10) * 10 - 1)


@dataclass(frozen=True)
class Store:
    store_id: str
    name: str
    city: int


@dataclass(frozen=True)
class Catalog:
    """Products sorted by category, with a popularity curve inside each category."""

    skus: list[str]
    names: list[str]
    brands: list[str]
    category: npt.NDArray[np.int64]
    price_rub: npt.NDArray[np.float64]
    margin: npt.NDArray[np.float64]
    cat_start: npt.NDArray[np.int64]  # first product index of each category
    cat_size: npt.NDArray[np.int64]
    stores: list[Store]
    stores_by_city: dict[int, list[int]]

    @classmethod
    def build(cls, seed: int) -> Catalog:
        """The catalogue for ``seed`` (1,500 products, the stores of :data:`vocab.CITIES`).

        Example:
            >>> c = Catalog.build(3)
            >>> [s.store_id for s in c.stores][:2]
            ['MSK-01', 'MSK-02']
        """
        rng = np.random.default_rng([seed, 0])
        counts = np.floor(np.array(_CATEGORY_WEIGHTS) * N_PRODUCTS).astype(np.int64)
        counts[0] += N_PRODUCTS - counts.sum()
        skus: list[str] = []
        names: list[str] = []
        brands: list[str] = []
        cats: list[int] = []
        prices: list[float] = []
        margins: list[float] = []
        for ci, (cat, n) in enumerate(zip(CATEGORIES, counts.tolist(), strict=True)):
            nouns = rng.integers(0, len(cat.nouns), n)
            brand_idx = rng.integers(0, len(cat.brands), n)
            suffix = rng.integers(0, len(MODEL_SUFFIXES), n)
            number = rng.integers(1, 999, n)
            raw_price = np.exp(rng.normal(np.log(cat.median_price), 0.6, n))
            margin = np.clip(rng.normal(cat.margin, 0.07, n), 0.02, 0.8)
            for j in range(n):
                skus.append(f"SKU-{100000 + len(skus)}")
                brand = cat.brands[brand_idx[j]]
                names.append(
                    f"{brand} {cat.nouns[nouns[j]]} {MODEL_SUFFIXES[suffix[j]]} {number[j]}"
                )
                brands.append(brand)
                cats.append(ci)
                prices.append(_psych_price(float(raw_price[j])))
                margins.append(round(float(margin[j]), 3))
        stores: list[Store] = []
        by_city: dict[int, list[int]] = {}
        for ci, city in enumerate(CITIES):
            for k in range(city.stores):
                by_city.setdefault(ci, []).append(len(stores))
                place = STORE_PLACES[(k + ci) % len(STORE_PLACES)]
                stores.append(
                    Store(
                        f"{city.store_code}-{k + 1:02d}",
                        f"{STORE_NAMES[city.store_code]}, {place}",
                        ci,
                    )
                )
        category = np.array(cats, dtype=np.int64)
        cat_start = np.searchsorted(category, np.arange(len(CATEGORIES))).astype(np.int64)
        return cls(
            skus=skus,
            names=names,
            brands=brands,
            category=category,
            price_rub=np.array(prices),
            margin=np.array(margins),
            cat_start=cat_start,
            cat_size=counts,
            stores=stores,
            stores_by_city=by_city,
        )

    def sample(
        self, rng: np.random.Generator, favourite: npt.NDArray[np.int64], loyalty: float = 0.6
    ) -> npt.NDArray[np.int64]:
        """One product index per entry of ``favourite`` (a category per draw).

        With probability ``loyalty`` the product comes from the favourite category, otherwise
        from any category; inside a category low ranks are much more popular (u**2.2 skew).

        Example:
            >>> c = Catalog.build(1)
            >>> idx = c.sample(np.random.default_rng(0), np.zeros(1000, dtype=np.int64), 1.0)
            >>> bool((c.category[idx] == 0).all())
            True
        """
        n = len(favourite)
        cat = np.where(rng.random(n) < loyalty, favourite, rng.integers(0, len(self.cat_size), n))
        rank = np.floor(rng.random(n) ** 2.2 * self.cat_size[cat]).astype(np.int64)
        return self.cat_start[cat] + rank

    def price_in(
        self, idx: npt.NDArray[np.int64], rub_rate: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.float64]:
        """Prices of products ``idx`` in the buyer's currency (RUB rate 1; GBP/EUR end in .99).

        Example:
            >>> c = Catalog.build(1)
            >>> float(c.price_in(np.array([0]), np.array([1.0]))[0]) == float(c.price_rub[0])
            True
        """
        rub = self.price_rub[idx]
        foreign = np.maximum(np.floor(rub / np.maximum(rub_rate, 1.0)), 1.0) - 0.01
        return np.where(rub_rate == 1.0, rub, np.round(foreign, 2))
