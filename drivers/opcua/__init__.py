"""OPC UA cells: a machine object on an OPC UA server (docs/opcua.md)."""
