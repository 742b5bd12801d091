"""``sobjects/EventLogFile/describe``: the real describe's shape (2015 capture) with today's fields."""

from __future__ import annotations

from typing import Any

from forwarder.testing.simulator.schemas import ELF_TYPES

# name, type, soapType, length, label (EventLogFile object reference v67; real 2015 describe for shapes)
_FIELDS = (
    ("Id", "id", "tns:ID", 18, "Event Log File ID"),
    ("IsDeleted", "boolean", "xsd:boolean", 0, "Deleted"),
    ("CreatedDate", "datetime", "xsd:dateTime", 0, "Created Date"),
    ("CreatedById", "reference", "tns:ID", 18, "Created By ID"),
    ("LastModifiedDate", "datetime", "xsd:dateTime", 0, "Last Modified Date"),
    ("LastModifiedById", "reference", "tns:ID", 18, "Last Modified By ID"),
    ("SystemModstamp", "datetime", "xsd:dateTime", 0, "System Modstamp"),
    ("EventType", "picklist", "xsd:string", 255, "Event Type"),
    ("LogDate", "datetime", "xsd:dateTime", 0, "Log Date"),
    ("LogFileLength", "double", "xsd:double", 0, "Log File Length"),
    ("LogFileContentType", "string", "xsd:string", 255, "Log File Content Type"),
    ("ApiVersion", "double", "xsd:double", 0, "API Version"),
    ("LogFileFieldNames", "string", "xsd:string", 1333, "Log File Field Names"),
    ("LogFileFieldTypes", "string", "xsd:string", 1333, "Log File Field Types"),
    ("LogFile", "base64", "xsd:base64Binary", 52428800, "Log File"),
    ("Interval", "picklist", "xsd:string", 255, "Interval"),
    ("Sequence", "int", "xsd:int", 0, "Sequence"),
)
_FIELD_DEFAULTS: dict[str, Any] = {
    "autoNumber": False,
    "byteLength": 0,
    "calculated": False,
    "calculatedFormula": None,
    "cascadeDelete": False,
    "caseSensitive": False,
    "controllerName": None,
    "createable": False,
    "custom": False,
    "defaultValue": None,
    "defaultValueFormula": None,
    "defaultedOnCreate": False,
    "dependentPicklist": False,
    "deprecatedAndHidden": False,
    "digits": 0,
    "displayLocationInDecimal": False,
    "encrypted": False,
    "externalId": False,
    "extraTypeInfo": None,
    "filterable": True,
    "filteredLookupInfo": None,
    "groupable": False,
    "highScaleNumber": False,
    "htmlFormatted": False,
    "idLookup": False,
    "inlineHelpText": None,
    "mask": None,
    "maskType": None,
    "nameField": False,
    "namePointing": False,
    "nillable": False,
    "permissionable": False,
    "picklistValues": [],
    "precision": 0,
    "queryByDistance": False,
    "referenceTargetField": None,
    "referenceTo": [],
    "relationshipName": None,
    "relationshipOrder": None,
    "restrictedDelete": False,
    "restrictedPicklist": False,
    "scale": 0,
    "sortable": True,
    "unique": False,
    "updateable": False,
    "writeRequiresMasterRead": False,
}


def _picklist(values: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{"active": True, "defaultValue": False, "label": v, "validFor": None, "value": v} for v in values]


def _field(name: str, kind: str, soap: str, length: int, label: str) -> dict[str, Any]:
    field: dict[str, Any] = {
        **_FIELD_DEFAULTS,
        "name": name,
        "type": kind,
        "soapType": soap,
        "label": label,
        "length": length if kind in ("string", "picklist", "id", "reference") else 0,
    }
    field["byteLength"] = length * 3 if field["length"] else 0
    if name == "Id":
        field["idLookup"] = True
    if kind == "reference":
        field["referenceTo"], field["relationshipName"] = ["User"], name.removesuffix("Id")
    if name == "EventType":
        field["picklistValues"], field["restrictedPicklist"] = _picklist(ELF_TYPES), True
    if name == "Interval":
        field["picklistValues"], field["nillable"] = _picklist(("Daily", "Hourly")), True
    if kind in ("double",):
        field["precision"], field["digits"] = 18, 0
    if kind == "base64":
        field["filterable"] = field["sortable"] = False
    return field


def describe_event_log_file(version: str, hourly: bool) -> dict[str, Any]:
    """Describe result; without the hourly entitlement the ``Interval`` field is absent (as in SOQL)."""
    base = f"/services/data/v{version}/sobjects/EventLogFile"
    fields = [_field(*spec) for spec in _FIELDS if hourly or spec[0] != "Interval"]
    return {
        "actionOverrides": [],
        "activateable": False,
        "childRelationships": [],
        "compactLayoutable": False,
        "createable": False,
        "custom": False,
        "customSetting": False,
        "deletable": False,
        "deprecatedAndHidden": False,
        "feedEnabled": False,
        "fields": fields,
        "keyPrefix": "0AT",
        "label": "Event Log File",
        "labelPlural": "Event Log Files",
        "layoutable": False,
        "listviewable": None,
        "lookupLayoutable": None,
        "mergeable": False,
        "name": "EventLogFile",
        "namedLayoutInfos": [],
        "queryable": True,
        "recordTypeInfos": [],
        "replicateable": False,
        "retrieveable": True,
        "searchLayoutable": False,
        "searchable": False,
        "triggerable": False,
        "undeletable": False,
        "updateable": False,
        "urls": {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"},
    }
