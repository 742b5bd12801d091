"""EventLogFile CSV schemas (column order and LogFileFieldTypes) for every event type the simulator writes.

Order follows real files where one was seen (salesforce-facts.md A4/A6: elastic 2022 Login mock, Beats
2021 Logout/ApexExecution/ApexRestApi rows, 2015 logstash CSVs); otherwise the doc field list arranged in
the real pattern (identity columns first, ``*_DERIVED`` and ``CLIENT_IP`` last), marked [?] below.
"""

from __future__ import annotations

S, ID, IP, N, B, ES, DT = "String", "Id", "IP", "Number", "Boolean", "EscapedString", "DateTime"

_HEAD = [("EVENT_TYPE", S), ("TIMESTAMP", S), ("REQUEST_ID", S), ("ORGANIZATION_ID", ID), ("USER_ID", ID)]
_TAIL = [("TIMESTAMP_DERIVED", DT), ("USER_ID_DERIVED", ID), ("CLIENT_IP", IP), ("URI_ID_DERIVED", ID)]
_KEYS = [("SESSION_KEY", S), ("LOGIN_KEY", S)]

#: EventType -> [(column, LogFileFieldTypes entry)], in CSV order.
COLUMNS: dict[str, list[tuple[str, str]]] = {
    # elastic 2022 mock order; LOGIN_TYPE after DB_TOTAL_TIME as in the Beats mock; LOGIN_SUB_TYPE [?]
    "Login": [
        *_HEAD,
        ("RUN_TIME", N),
        ("CPU_TIME", N),
        ("URI", ES),
        *_KEYS,
        ("USER_TYPE", S),
        ("REQUEST_STATUS", S),
        ("DB_TOTAL_TIME", N),
        ("LOGIN_TYPE", S),
        ("LOGIN_SUB_TYPE", S),
        ("BROWSER_TYPE", ES),
        ("API_TYPE", S),
        ("API_VERSION", S),
        ("USER_NAME", ES),
        ("TLS_PROTOCOL", S),
        ("CIPHER_SUITE", S),
        ("AUTHENTICATION_METHOD_REFERENCE", S),
        *_TAIL,
        ("LOGIN_STATUS", S),
        ("SOURCE_IP", IP),
    ],
    # Beats 2021 real row order
    "Logout": [
        *_HEAD,
        ("USER_TYPE", S),
        ("SESSION_TYPE", S),
        ("SESSION_LEVEL", S),
        ("BROWSER_TYPE", ES),
        ("PLATFORM_TYPE", N),
        ("RESOLUTION_TYPE", N),
        ("APP_TYPE", N),
        ("CLIENT_VERSION", N),
        ("API_TYPE", S),
        ("API_VERSION", S),
        ("USER_INITIATED_LOGOUT", B),
        *_KEYS,
        ("TIMESTAMP_DERIVED", DT),
        ("USER_ID_DERIVED", ID),
        ("CLIENT_IP", IP),
    ],
    # LoginAs doc fields (v67), order [?]
    "LoginAs": [
        *_HEAD,
        ("RUN_TIME", N),
        ("CPU_TIME", N),
        ("URI", ES),
        *_KEYS,
        ("DELEGATED_USER_ID", ID),
        ("DELEGATED_USER_NAME", ES),
        *_TAIL,
        ("DELEGATED_USER_ID_DERIVED", ID),
    ],
    # 2015 real API CSV order plus the modern columns seen in AppOmni rows [order of additions ?]
    "API": [
        *_HEAD,
        ("RUN_TIME", N),
        ("CPU_TIME", N),
        ("URI", ES),
        *_KEYS,
        ("USER_TYPE", S),
        ("REQUEST_STATUS", S),
        ("DB_TOTAL_TIME", N),
        ("API_TYPE", S),
        ("API_VERSION", S),
        ("CLIENT_NAME", ES),
        ("METHOD_NAME", S),
        ("ENTITY_NAME", S),
        ("ROWS_PROCESSED", N),
        ("REQUEST_SIZE", N),
        ("RESPONSE_SIZE", N),
        ("DB_BLOCKS", N),
        ("DB_CPU_TIME", N),
        ("QUERY", ES),
        ("EXCEPTION_MESSAGE", ES),
        *_TAIL,
    ],
    # 2015 real RestApi CSV order plus modern columns as in the Beats ApexRestApi row
    "RestApi": [
        *_HEAD,
        ("RUN_TIME", N),
        ("CPU_TIME", N),
        ("URI", ES),
        *_KEYS,
        ("USER_TYPE", S),
        ("REQUEST_STATUS", S),
        ("DB_TOTAL_TIME", N),
        ("METHOD", S),
        ("MEDIA_TYPE", S),
        ("STATUS_CODE", N),
        ("USER_AGENT", N),
        ("ROWS_PROCESSED", N),
        ("NUMBER_FIELDS", N),
        ("DB_BLOCKS", N),
        ("DB_CPU_TIME", N),
        ("REQUEST_SIZE", N),
        ("RESPONSE_SIZE", N),
        ("ENTITY_NAME", S),
        *_TAIL,
    ],
    # 2015 real BulkApi CSV order
    "BulkApi": [
        *_HEAD,
        ("RUN_TIME", N),
        ("CPU_TIME", N),
        ("CLIENT_IP", IP),
        ("URI", ES),
        ("JOB_ID", ID),
        ("BATCH_ID", ID),
        ("ROWS_PROCESSED", N),
        ("NUMBER_FAILURES", N),
        ("SUCCESS", B),
        ("MESSAGE", ES),
        ("ENTITY_TYPE", S),
        ("OPERATION_TYPE", S),
    ],
    # Report doc excerpt columns, order [?]
    "Report": [
        *_HEAD,
        ("RUN_TIME", N),
        ("CPU_TIME", N),
        ("URI", ES),
        *_KEYS,
        ("REQUEST_STATUS", S),
        ("DB_TOTAL_TIME", N),
        ("DB_BLOCKS", N),
        ("DB_CPU_TIME", N),
        ("REPORT_ID", ID),
        ("ENTITY_NAME", S),
        ("DISPLAY_TYPE", S),
        ("RENDERING_TYPE", S),
        ("NUMBER_EXCEPTION_FILTERS", N),
        ("NUMBER_COLUMNS", N),
        ("AVERAGE_ROW_SIZE", N),
        ("ROW_COUNT", N),
        ("NUMBER_BUCKETS", N),
        ("ORIGIN", S),
        *_TAIL,
    ],
    # ReportExport doc excerpt columns, order [?]
    "ReportExport": [
        *_HEAD,
        ("RUN_TIME", N),
        ("CPU_TIME", N),
        ("URI", ES),
        *_KEYS,
        ("CLIENT_INFO", ES),
        ("REPORT_DESCRIPTION", ES),
        ("REPORT_ID", ID),
        *_TAIL,
    ],
    # URI doc columns, order [?]
    "URI": [
        *_HEAD,
        ("RUN_TIME", N),
        ("CPU_TIME", N),
        ("URI", ES),
        *_KEYS,
        ("USER_TYPE", S),
        ("REQUEST_STATUS", S),
        ("DB_TOTAL_TIME", N),
        ("DB_BLOCKS", N),
        ("DB_CPU_TIME", N),
        ("REFERRER_URI", ES),
        *_TAIL,
    ],
    # New Relic numeric columns + doc identity columns, order [?]
    "LightningPageView": [
        *_HEAD,
        *_KEYS,
        ("PAGE_APP_NAME", S),
        ("PAGE_URL", ES),
        ("PAGE_ENTITY_TYPE", S),
        ("DURATION", N),
        ("EFFECTIVE_PAGE_TIME", N),
        ("PAGE_START_TIME", N),
        ("UI_EVENT_SEQUENCE_NUM", N),
        ("TIMESTAMP_DERIVED", DT),
        ("USER_ID_DERIVED", ID),
        ("CLIENT_IP", IP),
    ],
    # Beats 2021 real ApexExecution row order
    "ApexExecution": [
        *_HEAD,
        ("RUN_TIME", N),
        ("CPU_TIME", N),
        ("URI", ES),
        *_KEYS,
        ("EXEC_TIME", N),
        ("DB_TOTAL_TIME", N),
        ("CALLOUT_TIME", N),
        ("NUMBER_SOQL_QUERIES", N),
        ("ENTRY_POINT", ES),
        ("QUIDDITY", S),
        ("IS_LONG_RUNNING_REQUEST", B),
        *_TAIL,
    ],
    # ContentTransfer doc fields plus modern identity columns, order [?]
    "ContentTransfer": [
        *_HEAD,
        *_KEYS,
        ("TRANSACTION_TYPE", S),
        ("DOCUMENT_ID", ID),
        ("VERSION_ID", ID),
        ("FILE_TYPE", S),
        ("FILE_PREVIEW_TYPE", S),
        ("SIZE_BYTES", N),
        ("TIMESTAMP_DERIVED", DT),
        ("USER_ID_DERIVED", ID),
        ("DOCUMENT_ID_DERIVED", ID),
        ("VERSION_ID_DERIVED", ID),
        ("CLIENT_IP", IP),
    ],
    # AppOmni 2025 row's columns (its CSV order is unknown) in the usual pattern [?]
    "Search": [
        *_HEAD,
        ("QUERY_ID", S),
        ("SEARCH_QUERY", ES),
        ("NUM_RESULTS", N),
        ("PREFIXES_SEARCHED", S),
        ("TIMESTAMP_DERIVED", DT),
    ],
    # ApiTotalUsage doc v67 fields; no SESSION_KEY/LOGIN_KEY/USER_ID_DERIVED (facts A6)
    "ApiTotalUsage": [
        ("EVENT_TYPE", S),
        ("TIMESTAMP", S),
        ("REQUEST_ID", S),
        ("ORGANIZATION_ID", ID),
        ("USER_ID", ID),
        ("USER_NAME", ES),
        ("API_FAMILY", S),
        ("API_VERSION", N),
        ("API_RESOURCE", ES),
        ("HTTP_METHOD", S),
        ("STATUS_CODE", N),
        ("ENTITY_NAME", S),
        ("CLIENT_NAME", ES),
        ("CONNECTED_APP_ID", ID),
        ("CONNECTED_APP_NAME", ES),
        ("API_CLIENT_CATEGORY", S),
        ("COUNTS_AGAINST_API_LIMIT", B),
        ("BOT_IDENTIFIER", S),
        ("BOT_SESSION_IDENTIFIER", S),
        ("PLANNER_IDENTIFIER", S),
        ("TIMESTAMP_DERIVED", DT),
        ("CLIENT_IP", IP),
    ],
}

ELF_TYPES = tuple(COLUMNS)


def field_names(event_type: str) -> list[str]:
    return [name for name, _ in COLUMNS[event_type]]


def field_names_header(event_type: str) -> str:
    """``LogFileFieldNames``: the ordered comma list of columns (EventLogFile object reference)."""
    return ",".join(field_names(event_type))


def field_types_header(event_type: str) -> str:
    """``LogFileFieldTypes``: the ordered comma list of types (real value in create_event_ELF_list1.json)."""
    return ",".join(kind for _, kind in COLUMNS[event_type])
