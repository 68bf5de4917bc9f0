"""A seeded background population for matching tests: distinct people, no duplicates.

Splink estimates its parameters from the data it scores; on a file of twenty records the
duplicates themselves dominate the estimates. Tests mix their hand-made records with these
people, who share no name with one another (nor with the hand-made ones: other name lists),
so that the estimates look like those of a real file.

Example:
    >>> background(2)[0]
    ('bg0', 'Adam', 'Baker', '1950-01-01', 'Oak Street 1', 'Bristol', 'BS1 100')
"""

from __future__ import annotations

from datetime import date, timedelta

FIRST = [
    "Adam", "Bella", "Conrad", "Diana", "Edgar", "Fiona", "Gavin", "Helen", "Igor", "Jana",
    "Karl", "Laura", "Milan", "Nora", "Otto", "Paula", "Quentin", "Rita", "Stefan", "Tanya",
]  # fmt: skip
LAST = [
    "Baker", "Carter", "Dawson", "Ellis", "Fletcher", "Gibson", "Harper", "Irving", "Jensen",
    "Keller", "Lambert", "Morrison", "Nolan", "Olsen", "Porter", "Quinn", "Reyes", "Stone",
    "Turner", "Vance",
]  # fmt: skip
STREETS = ["Oak Street", "Mill Road", "Church Lane", "Park Avenue", "Station Road", "Hill Drive"]
CITIES = ["Bristol", "Leeds", "York", "Bath", "Derby", "Exeter", "Hull"]


def background(n: int = 200) -> list[tuple[str, str, str, str, str, str, str]]:
    """``n`` (<= 400) people: id, first name, last name, birth date, street, city, postcode."""
    if n > 400:
        raise ValueError("at most 400 distinct first/last name pairs")
    people = []
    for i in range(n):
        k, a = divmod(i, len(FIRST))
        first, last = FIRST[a], LAST[(a + k) % len(LAST)]
        born = date(1950, 1, 1) + timedelta(days=97 * i)
        street = f"{STREETS[i % len(STREETS)]} {(i * 7) % 150 + 1}"
        people.append(
            (f"bg{i}", first, last, born.isoformat(), street, CITIES[i % len(CITIES)],
             f"BS{i % 9 + 1} {100 + i}")
        )  # fmt: skip
    return people
