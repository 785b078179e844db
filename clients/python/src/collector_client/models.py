"""Typed request and response models, written against the server's ``/openapi.json``.

Every ``components.schemas`` entry of the server has a counterpart here with the same name:
object schemas are ``TypedDict`` classes (a required property is a required key; an optional
one is ``NotRequired``), string enums are ``Literal`` aliases. ``ROUTES`` lists every route the
server documents, with its query parameters, its request body and its success answers.
``tests/test_drift.py`` compares all of it with a live server's ``/openapi.json`` and fails on
any difference (a route, a parameter, a field, its requiredness or its JSON type).

Responses are plain ``dict`` objects at run time (what ``json.loads`` gives), so a field the
server adds later never breaks a caller; the types are for editors and type checkers.
"""

from typing import Any, Dict, List, Literal, NamedTuple, Optional, Tuple

from typing_extensions import NotRequired, TypedDict

# --- enums -------------------------------------------------------------------------------

ExportFormat = Literal["openai", "openai_dpo", "bedrock"]
ExportSplit = Literal["train", "validation"]
FeedbackType = Literal["thumbs_up", "thumbs_down", "edit", "report"]
IssueCode = Literal[
    "not_an_object",
    "empty_workflow",
    "missing_field",
    "wrong_type",
    "empty_field",
    "duplicate_node_name",
    "unknown_node",
    "duplicate_module_id",
    "invalid_module",
    "no_trigger",
    "missing_parameters",
    "disconnected_node",
    "unknown_platform",
]
IssueCategory = Literal[
    "incorrect_workflow", "missing_steps", "wrong_platform", "invalid_syntax", "incomplete", "other"
]
Kind = Literal["conversation", "workflow_generation"]
ReadinessStatus = Literal["ready", "almost_ready", "not_ready"]
StorageClass = Literal["STANDARD", "STANDARD_IA"]

#: ``KnownPlatform`` is an enum in the schema (the configured platforms), but admins add
#: platforms at run time (CONTRACT 7a), so the client types it as ``str``.
KnownPlatform = str
#: The platforms the schema lists by default.
DEFAULT_PLATFORMS: Tuple[str, ...] = ("n8n", "zapier", "make")

#: Any JSON value but null.
NotNull = Any

#: Enum schemas, by name (the drift test maps ``Literal`` types back to these names).
ENUMS: Dict[str, Any] = {
    "ExportFormat": ExportFormat,
    "ExportSplit": ExportSplit,
    "FeedbackType": FeedbackType,
    "IssueCategory": IssueCategory,
    "IssueCode": IssueCode,
    "Kind": Kind,
    "ReadinessStatus": ReadinessStatus,
    "StorageClass": StorageClass,
}
#: Schemas the client types as something simpler than the schema says, and why.
OPEN_SCHEMAS: Dict[str, str] = {
    "KnownPlatform": "str: the set grows at run time (POST /api/platforms)",
    "NotNull": "Any: any JSON value but null",
}

# --- errors --------------------------------------------------------------------------------


class FieldError(TypedDict):
    field: str
    message: str


class ErrorDetail(TypedDict):
    code: str
    message: str
    details: NotRequired[Optional[List[FieldError]]]


class ErrorBody(TypedDict):
    error: ErrorDetail


# --- interactions ----------------------------------------------------------------------------


class InteractionInput(TypedDict):
    platform: KnownPlatform
    user_message: str
    interaction_id: NotRequired[Optional[str]]
    user_id: NotRequired[Optional[str]]
    kind: NotRequired[Optional[Kind]]
    ai_response: NotRequired[Optional[str]]
    intent: NotRequired[Optional[str]]
    workflow: NotRequired[Optional[Dict[str, Any]]]
    workflow_gzip_hex: NotRequired[Optional[str]]
    success: NotRequired[Optional[bool]]
    error_message: NotRequired[Optional[str]]
    processing_time_ms: NotRequired[Optional[int]]
    model_version: NotRequired[Optional[str]]
    metadata: NotRequired[Optional[Dict[str, Any]]]
    training_consent: NotRequired[Optional[bool]]
    created_at: NotRequired[Optional[str]]


class IngestReceipt(TypedDict):
    interaction_id: str
    created_at: str
    compressed: bool
    original_bytes: int
    stored_bytes: int


class NotCollected(TypedDict):
    collected: bool


class BatchInput(TypedDict):
    interactions: List[Any]


class BatchItem(TypedDict):
    index: int
    status: int
    interaction_id: NotRequired[Optional[str]]
    error: NotRequired[Optional[ErrorDetail]]


class BatchAnswer(TypedDict):
    results: List[BatchItem]


class Feedback(TypedDict):
    feedback_id: str
    interaction_id: str
    submitted_by: str
    feedback_type: FeedbackType
    created_at: str
    comment: NotRequired[Optional[str]]
    corrected_workflow: NotRequired[Dict[str, Any]]
    issue_category: NotRequired[Optional[str]]
    sentiment_score: NotRequired[Optional[int]]


class Issue(TypedDict):
    code: IssueCode
    path: str
    message: str


class Diff(TypedDict):
    added: List[str]
    removed: List[str]
    modified: List[str]


class ValidationLog(TypedDict):
    validation_id: str
    user_id: str
    platform: str
    passed: bool
    score: int
    errors: List[Issue]
    warnings: List[Issue]
    user_edited: bool
    workflow: Any
    duration_ms: float
    created_at: str
    diff: NotRequired[Optional[Diff]]
    interaction_id: NotRequired[Optional[str]]
    original_workflow: NotRequired[Any]


class FullRecord(TypedDict):
    interaction_id: str
    user_id: str
    platform: str
    kind: Kind
    user_message: str
    success: bool
    training_consent: bool
    created_at: str
    has_feedback: bool
    positive_feedback: int
    negative_feedback: int
    archived: bool
    feedback: List[Feedback]
    validations: List[ValidationLog]
    ai_response: NotRequired[Optional[str]]
    intent: NotRequired[Optional[str]]
    workflow: NotRequired[Any]
    error_message: NotRequired[Optional[str]]
    processing_time_ms: NotRequired[Optional[int]]
    model_version: NotRequired[Optional[str]]
    metadata: NotRequired[Optional[Dict[str, Any]]]
    last_feedback_type: NotRequired[Optional[FeedbackType]]


class InteractionPage(TypedDict):
    items: List[FullRecord]
    next_cursor: NotRequired[Optional[str]]


# --- feedback and validation -------------------------------------------------------------------


class FeedbackInput(TypedDict):
    interaction_id: str
    feedback_type: FeedbackType
    sentiment_score: NotRequired[Optional[int]]
    comment: NotRequired[Optional[str]]
    corrected_workflow: NotRequired[Optional[Dict[str, Any]]]
    issue_category: NotRequired[Optional[IssueCategory]]


class FeedbackReceipt(TypedDict):
    feedback_id: str
    interaction_id: str


class ValidateInput(TypedDict):
    platform: KnownPlatform
    workflow: NotNull
    interaction_id: NotRequired[Optional[str]]
    original_workflow: NotRequired[Any]
    user_edited: NotRequired[Optional[bool]]
    user_id: NotRequired[Optional[str]]


class ValidationResult(TypedDict):
    validation_id: str
    passed: bool
    score: int
    errors: List[Issue]
    warnings: List[Issue]
    duration_ms: float
    diff: NotRequired[Optional[Diff]]
    interaction_id: NotRequired[Optional[str]]


# --- stats and readiness -------------------------------------------------------------------------


class Overview(TypedDict):
    total_records: int
    active_records: int
    archived_records: int
    successful: int
    success_rate: float
    with_feedback: int
    feedback_rate: float
    positive_feedback: int
    negative_feedback: int


class Storage(TypedDict):
    hot_bytes: int
    hot_human: str
    archive_bytes: int
    archive_human: str
    archive_objects: int
    compressed_records: int
    compression_saved_bytes: int


class Prices(TypedDict):
    hot_gb_month: NotRequired[float]
    archive_gb_month: NotRequired[float]


class Costs(TypedDict):
    hot_monthly_usd: float
    archive_monthly_usd: float
    total_monthly_usd: float
    without_archiving_monthly_usd: float
    savings_monthly_usd: float
    savings_percentage: float
    prices: Prices


class PlatformStats(TypedDict):
    total: int
    active: int
    archived: int
    successful: int
    with_feedback: int
    hot_bytes: int
    archive_bytes: int


class ReadinessBrief(TypedDict):
    readiness_score: int
    is_ready: bool


class Stats(TypedDict):
    generated_at: str
    overview: Overview
    storage: Storage
    costs: Costs
    by_platform: Dict[str, PlatformStats]
    training_readiness: Dict[str, ReadinessBrief]
    recommendations: List[str]


class ReadinessMetrics(TypedDict):
    total_examples: int
    successful: int
    with_feedback: int
    quality_examples: int
    positive_feedback_rate: float


class Thresholds(TypedDict):
    total_examples: NotRequired[int]
    successful: NotRequired[int]
    with_feedback: NotRequired[int]
    quality_examples: NotRequired[int]
    min_score: NotRequired[int]


class Readiness(TypedDict):
    platform: str
    readiness_score: int
    is_ready: bool
    status: ReadinessStatus
    metrics: ReadinessMetrics
    thresholds: Thresholds
    recommendations: List[str]


# --- archive -----------------------------------------------------------------------------------


class ArchiveInput(TypedDict):
    days_old: NotRequired[Optional[int]]
    dry_run: NotRequired[Optional[bool]]
    platform: NotRequired[Optional[KnownPlatform]]
    wait: NotRequired[Optional[bool]]


class ArchivedObjectReport(TypedDict):
    platform: str
    date: str
    object_key: str
    record_count: int
    raw_bytes: int
    compressed_bytes: int
    compression_ratio: float
    storage_class: StorageClass


class Maintenance(TypedDict):
    rolled_forward: int
    rolled_back: int
    compacted_objects: int
    erased_lines: int
    swept_objects: int
    copied_unreadable_lines: int
    dropped_corrupt_segments: int
    failed_compactions: int


class ArchiveReport(TypedDict):
    dry_run: bool
    complete: bool
    cutoff: str
    archived_records: int
    before: Overview
    after: Overview
    archives: List[ArchivedObjectReport]
    maintenance: Maintenance


# --- deletes -------------------------------------------------------------------------------------


class DeletedCounts(TypedDict):
    interactions: int
    feedback: int
    validation_logs: int
    examples: int
    archived_records: int


class PendingErasure(TypedDict):
    archive_objects: int


class DeleteAnswer(TypedDict):
    deleted: DeletedCounts
    affected_exports: List[str]
    pending_erasure: NotRequired[Optional[PendingErasure]]


# --- curated examples, training metrics, platforms ------------------------------------------------


class ExampleInput(TypedDict):
    platform: KnownPlatform
    user_message: str
    workflow: NotRequired[Optional[Dict[str, Any]]]
    ai_response: NotRequired[Optional[str]]
    description: NotRequired[Optional[str]]
    tags: NotRequired[Optional[List[str]]]


class ExampleReceipt(TypedDict):
    example_id: str


class CuratedExample(TypedDict):
    example_id: str
    platform: str
    user_message: str
    tags: List[str]
    usage_count: int
    created_by: str
    created_at: str
    ai_response: NotRequired[Optional[str]]
    description: NotRequired[Optional[str]]
    workflow: NotRequired[Any]


class ExampleList(TypedDict):
    items: List[CuratedExample]


class ExampleCount(TypedDict):
    examples: int


class ExampleDeleted(TypedDict):
    deleted: ExampleCount


class MetricInput(TypedDict):
    platform: KnownPlatform
    model: str
    dataset_size: int
    run_id: NotRequired[Optional[str]]
    metrics: NotRequired[Optional[Dict[str, float]]]
    notes: NotRequired[Optional[str]]


class MetricReceipt(TypedDict):
    metric_id: str


class TrainingMetric(TypedDict):
    metric_id: str
    platform: str
    model: str
    dataset_size: int
    metrics: Dict[str, Any]
    created_by: str
    created_at: str
    run_id: NotRequired[Optional[str]]
    notes: NotRequired[Optional[str]]


class MetricList(TypedDict):
    items: List[TrainingMetric]


class PlatformInput(TypedDict):
    platform: str


class PlatformAddOutcome(TypedDict):
    platform: str
    added: bool


class PlatformInfo(TypedDict):
    platform: str
    configured: bool
    validator: bool


class PlatformList(TypedDict):
    items: List[PlatformInfo]
    max_platforms: int


# --- exports (lineage) -------------------------------------------------------------------------


class ManifestFilters(TypedDict):
    success_only: bool
    with_feedback_only: bool
    include_archived: bool
    include_metadata: bool
    max_tokens: int
    limit: NotRequired[Optional[int]]
    since: NotRequired[Optional[str]]
    until: NotRequired[Optional[str]]


class ManifestSplit(TypedDict):
    side: str
    validation_fraction: float


class ExportManifest(TypedDict):
    export_id: str
    created_at: str
    caller: str
    platform: str
    format: str
    filters: ManifestFilters
    lines: int
    sha256: str
    bytes: int
    split: NotRequired[Optional[ManifestSplit]]


class ExportPage(TypedDict):
    items: List[ExportManifest]
    next_cursor: NotRequired[Optional[str]]


class Health(TypedDict):
    status: str
    version: str
    backend: str


# --- routes --------------------------------------------------------------------------------------

#: A success answer that is a JSONL stream rather than one JSON document.
JSONL = "jsonl"
#: A success answer without a body (a redirect).
NO_BODY = None


class Route(NamedTuple):
    """One documented route, as the client calls it."""

    method: str
    path: str
    operation_id: str
    #: The ``Client`` method that calls it.
    client_method: str
    #: Query parameters, in any order.
    query: Tuple[str, ...]
    #: Request body schema name, or None without a body.
    body: Optional[str]
    #: Success status -> schema name (``JSONL``, or ``NO_BODY``).
    responses: Dict[int, Optional[str]]


EXPORT_QUERY: Tuple[str, ...] = (
    "format",
    "split",
    "validation_fraction",
    "success_only",
    "with_feedback_only",
    "include_archived",
    "include_metadata",
    "since",
    "until",
    "limit",
)

ROUTES: Tuple[Route, ...] = (
    Route("GET", "/api/health", "health", "health", (), None, {200: "Health"}),
    Route("GET", "/openapi.json", "openapi_json", "openapi", (), None, {200: "object"}),
    Route("POST", "/api/interactions", "log_interaction", "log_interaction", (), "InteractionInput",
          {200: "IngestReceipt", 201: "IngestReceipt", 202: "NotCollected"}),
    Route("POST", "/api/interactions/batch", "log_batch", "log_batch", (), "BatchInput", {200: "BatchAnswer"}),
    Route("GET", "/api/interactions/{id}", "get_interaction", "get_interaction", (), None, {200: "FullRecord"}),
    Route("GET", "/api/interactions", "list_interactions", "list_interactions",
          ("platform", "limit", "cursor", "user_id"), None, {200: "InteractionPage"}),
    Route("POST", "/api/workflow/validate", "validate", "validate_workflow", (), "ValidateInput",
          {200: "ValidationResult"}),
    Route("POST", "/api/feedback/submit", "submit", "submit_feedback", (), "FeedbackInput", {201: "FeedbackReceipt"}),
    Route("GET", "/api/feedback/stats", "stats", "stats", (), None, {200: "Stats"}),
    Route("POST", "/api/feedback/archive", "archive", "archive", (), "ArchiveInput", {200: "ArchiveReport"}),
    Route("GET", "/api/feedback/export/{platform}", "export_platform", "export", EXPORT_QUERY, None,
          {200: JSONL, 303: NO_BODY}),
    Route("GET", "/api/feedback/readiness/{platform}", "readiness", "readiness", (), None, {200: "Readiness"}),
    Route("DELETE", "/api/feedback/data/{interaction_id}", "delete_one", "delete_interaction", (), None,
          {200: "DeleteAnswer"}),
    Route("DELETE", "/api/feedback/data", "delete_user", "delete_user_data", ("user_id",), None,
          {200: "DeleteAnswer"}),
    Route("DELETE", "/api/me/data", "delete_me", "delete_my_data", (), None, {200: "DeleteAnswer"}),
    Route("GET", "/api/me/data", "my_data", "my_data", (), None, {200: JSONL, 303: NO_BODY}),
    Route("POST", "/api/examples", "add_example", "add_example", (), "ExampleInput", {201: "ExampleReceipt"}),
    Route("GET", "/api/examples", "list_examples", "list_examples", ("platform",), None, {200: "ExampleList"}),
    Route("DELETE", "/api/examples/{id}", "delete_example", "delete_example", (), None, {200: "ExampleDeleted"}),
    Route("POST", "/api/training-metrics", "add_metric", "add_training_metric", (), "MetricInput",
          {201: "MetricReceipt"}),
    Route("GET", "/api/training-metrics", "list_metrics", "list_training_metrics", ("platform",), None,
          {200: "MetricList"}),
    Route("POST", "/api/platforms", "add_platform", "add_platform", (), "PlatformInput",
          {200: "PlatformAddOutcome", 201: "PlatformAddOutcome"}),
    Route("GET", "/api/platforms", "list_platforms", "list_platforms", (), None, {200: "PlatformList"}),
    Route("GET", "/api/exports", "list_exports", "list_exports", ("limit", "cursor"), None, {200: "ExportPage"}),
    Route("GET", "/api/exports/{export_id}", "get_export", "get_export", (), None, {200: "ExportManifest"}),
)

#: Every schema the client declares, by name (object schemas and enums).
SCHEMAS: Dict[str, Any] = {
    name: value
    for name, value in dict(globals()).items()
    if isinstance(value, type) and issubclass(value, dict) and hasattr(value, "__required_keys__")
}
SCHEMAS.update(ENUMS)

__all__ = [
    *SCHEMAS.keys(),
    "KnownPlatform",
    "NotNull",
    "DEFAULT_PLATFORMS",
    "ENUMS",
    "OPEN_SCHEMAS",
    "Route",
    "ROUTES",
    "SCHEMAS",
    "JSONL",
    "NO_BODY",
    "EXPORT_QUERY",
]
