"""A Salesforce org simulator speaking the real wire protocols: OAuth, REST/SOQL, EventLogFile, CometD."""
