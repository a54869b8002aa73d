"""A listener profile with scalar and collection features."""

from fsgen import Entity, FeatureGroup, FeatureSet, Fractional, Integral, Online, String
from fsgen.types import List

listener = Entity("listener_id", String, description="A listener of the service")

profiles = FeatureGroup(
    "listener-profile",
    entity=listener,
    event_time="ts",
    online=Online(ttl="7d", storage="InMemory"),
    owner="recs-ml",
    description="Listening profile",
)


@profiles.feature(Integral, description="Age in years")
def age(raw_age: int) -> int:
    return raw_age


@profiles.feature(Fractional, description="Share of skipped tracks")
def skip_rate(skips: int, plays: int) -> float:
    return skips / plays if plays else 0.0


@profiles.feature(String, description="Home country")
def country(raw_country: str) -> str:
    return raw_country.upper()


@profiles.feature(List(String), description="Top genres, most played first")
def top_genres(genres: list[str]) -> list[str]:
    return genres[:5]

genre_model = FeatureSet(
    "genre-model",
    [age, top_genres],
    description="Next genre to recommend",
    owner="recs-ml",
    missing="default",
    defaults={age: 2.5, top_genres: ["pop"]},
)
