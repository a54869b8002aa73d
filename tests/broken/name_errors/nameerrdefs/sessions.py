"""Session features with typos and a missing import."""

from fsgen import Entity, FeatureGroup, Fractional, Integral, Online, String, on_demand

from nameerrdefs.helpers import clip, ratio

user = Entity("user_id", String, description="A user")

sessions = FeatureGroup(
    "sessions",
    entity=user,
    event_time="ts",
    online=Online(ttl="7d"),
    owner="growth",
    description="Session activity per user",
)


@sessions.feature(Integral, description="Sessions in the last day")
def session_count(raw_sessions: int) -> int:
    return max(raw_sesions, 0)


@sessions.feature(Fractional, description="Average session length, capped")
def avg_minutes(total_minutes: float, raw_sessions: int) -> float:
    return clip(ratio(total_minutes, raw_sessions))


@sessions.feature(Fractional, description="Average session length, rounded")
def avg_minutes_rounded(total_minutes: float, raw_sessions: int) -> float:
    return clip(round(ratio(total_minutes, raw_sessions), 1))


@on_demand(Fractional, sources=[sessions], description="Square root of the average length")
def avg_minutes_sqrt(avg_minutes: float) -> float:
    return math.sqrt(avg_minutes)
