"""Feature names and kinds of the Chicago Taxi data: the single source of truth for the model.

Every raw column the pipeline reads is listed here exactly once, by how the model uses it.
"""

# Categorical string columns, mapped to ids through a Transform vocabulary.
VOCABULARY_FEATURES = ["payment_type", "company"]
VOCABULARY_SIZE = 100  # the sample has 7 payment types and 61 companies
OOV_BUCKETS = 5

# Small integer categories, used as ids directly: feature -> number of ids (max value + 1).
INTEGER_CATEGORICAL_FEATURES = {
    "trip_start_hour": 24,
    "trip_start_day": 8,  # 1 = Sunday ... 7 = Saturday
    "trip_start_month": 13,
    "pickup_community_area": 78,  # Chicago has 77 community areas; 0 stands for missing
    "dropoff_community_area": 78,
}

# Skewed positive amounts: log1p, then z-score with statistics from the training window.
NUMERIC_FEATURES = ["fare", "trip_miles", "trip_seconds"]

# Bucketized into training-window quantiles, each bucket with its own embedding: coordinates, and the
# amounts too (alongside their scaled values), because tipping jumps at fare levels rather than smoothly.
BUCKETIZED_FEATURES = [
    "pickup_latitude",
    "pickup_longitude",
    "dropoff_latitude",
    "dropoff_longitude",
    *NUMERIC_FEATURES,
]
BUCKET_COUNT = 20

# Read by the pipeline but deliberately not model inputs: `tips` only defines the label (it is not
# known when a trip is scored), the timestamp would let the model memorise periods, and the census
# tracts are mostly missing (pickup 99.99 %, dropoff 28 % in the sample).
TIPS = "tips"
FARE = "fare"
TIMESTAMP = "trip_start_timestamp"  # seconds since 1970; hour, day and month are derived from it in UTC
NOT_MODEL_INPUTS = [TIPS, TIMESTAMP, "pickup_census_tract", "dropoff_census_tract"]

# Evaluation-only: Transform derives it so TFMA can slice on it; it is never a model input (the model
# sees trip_start_hour itself). Bands of six hours, labelled so a report reads without a legend.
HOUR_BAND = "trip_start_hour_band"
HOUR_BANDS = ("00-05 night", "06-11 morning", "12-17 afternoon", "18-23 evening")

# The label: a big tipper tips more than this percentage of the fare, compared in whole cents, so a tip
# of exactly 20 % is not a big tip (in float32, 0.2 * fare rounds and some such trips counted).
LABEL = "big_tipper"
BIG_TIPPER_PERCENT_OF_FARE = 20

MODEL_INPUTS = sorted(
    {*VOCABULARY_FEATURES, *INTEGER_CATEGORICAL_FEATURES, *NUMERIC_FEATURES, *BUCKETIZED_FEATURES}
)
# Every column a CSV must have for the pipeline to run on it (in any order), and what a request carries.
REQUIRED_COLUMNS = MODEL_INPUTS + NOT_MODEL_INPUTS
SERVING_COLUMNS = [column for column in REQUIRED_COLUMNS if column != TIPS]


def cents(dollars: float) -> int:
    """An amount in dollars (two decimals, as the data writes them) as whole cents."""
    return round(dollars * 100)


def is_big_tipper(tips: float, fare: float) -> bool:
    """The label, for Python callers: the same comparison as `preprocessing_fn`'s, in whole cents."""
    return cents(tips) * 100 > cents(fare) * BIG_TIPPER_PERCENT_OF_FARE


def transformed_name(feature: str) -> str:
    """Name of a feature after Transform (the Keras model's input name)."""
    return f"{feature}_xf"


def bucketized_name(feature: str) -> str:
    """Name of a feature's quantile-bucket ids after Transform."""
    return f"{feature}_bucket_xf"
