"""The simulated org's population: users, places (with IP ranges and geo), browsers and connected apps."""

from __future__ import annotations

import random
from dataclasses import dataclass

from forwarder.testing.simulator.formats import id18, new_id15


@dataclass(frozen=True, slots=True)
class Place:
    city: str
    country: str
    iso: str
    subdivision: str
    postal: str
    lat: float
    lon: float
    net: str  # first three octets; the last one is drawn per login

    def ip(self, rng: random.Random) -> str:
        return f"{self.net}.{rng.randrange(2, 254)}"


@dataclass(frozen=True, slots=True)
class User:
    id15: str
    username: str
    name: str
    home: Place
    admin: bool = False

    @property
    def id(self) -> str:
        """18-character id, as streams and SOQL return it (ELF USER_ID is the 15-char form)."""
        return id18(self.id15)


PLACES = (
    Place("San Francisco", "United States", "US", "California", "94107", 37.7697, -122.3933, "198.51.100"),
    Place("London", "United Kingdom", "GB", "England", "EC1A", 51.5142, -0.0931, "81.2.69"),
    Place("Surat", "India", "IN", "Gujarat", "395007", 21.1888, 72.8293, "175.16.199"),
    Place("Sydney", "Australia", "AU", "New South Wales", "2000", -33.8688, 151.2093, "203.0.113"),
    Place("Linköping", "Sweden", "SE", "Östergötland County", "58183", 58.4167, 15.6167, "89.160.20"),
    Place("São Paulo", "Brazil", "BR", "São Paulo", "01310", -23.5475, -46.6361, "67.43.156"),
)
#: Where attackers come from (hosting/VPN ranges far from every user's home).
ATTACKER_PLACES = (
    Place("Bucharest", "Romania", "RO", "Bucuresti", "010011", 44.4323, 26.1063, "185.220.101"),
    Place("Lagos", "Nigeria", "NG", "Lagos", "100001", 6.4541, 3.3947, "102.89.32"),
)

FIRST = (
    "alice",
    "bob",
    "carol",
    "dave",
    "erin",
    "frank",
    "grace",
    "heidi",
    "ivan",
    "judy",
    "mallory",
    "niaj",
    "olivia",
    "peggy",
    "rupert",
    "sybil",
    "trent",
    "victor",
    "walter",
    "zoe",
)
LAST = ("smith", "jones", "patel", "garcia", "chen", "muller", "rossi", "silva", "kim", "novak")

BROWSERS = (
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
        "Chrome 124",
        "Windows 10",
        1015,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
        "Chrome 124",
        "Mac OSX",
        2003,
    ),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0", "Firefox 125", "Linux", 4000),
)
API_CLIENTS = (
    "simple-salesforce/1.12.6",
    "python-requests/2.32.3",
    "Workbench/59.0",
    "DataLoaderBulkUI/60.0.0",
)


def make_users(rng: random.Random, count: int, domain: str) -> list[User]:
    users = []
    for index in range(count):
        first, last = FIRST[index % len(FIRST)], LAST[(index * 7) % len(LAST)]
        suffix = "" if index < len(FIRST) else str(index // len(FIRST))
        users.append(
            User(
                id15=new_id15(rng, "005"),
                username=f"{first}.{last}{suffix}@{domain}",
                name=f"{first.title()} {last.title()}",
                home=PLACES[index % len(PLACES)],
                admin=index < 2,
            )
        )
    return users
