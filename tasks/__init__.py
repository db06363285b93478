"""The named tasks that ship with taskd, one module per family."""
