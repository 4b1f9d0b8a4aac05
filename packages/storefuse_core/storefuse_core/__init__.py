"""storefuse_core."""
