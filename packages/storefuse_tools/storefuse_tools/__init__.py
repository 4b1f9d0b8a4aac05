"""storefuse_tools."""
