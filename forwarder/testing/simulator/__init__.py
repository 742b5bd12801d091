"""A Salesforce org simulator speaking the real wire protocols: OAuth, REST/SOQL, EventLogFile, CometD."""

from forwarder.testing.simulator.app import Simulator
from forwarder.testing.simulator.traffic import Activity, Traffic

__all__ = ["Activity", "Simulator", "Traffic"]
