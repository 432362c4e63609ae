"""Tenant isolation and hostile input (issue #12): one file per part."""
