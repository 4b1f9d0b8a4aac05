"""storefuse_nodes."""
