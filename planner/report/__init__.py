"""Renderers of a `WhatIfReport`: terminal table, PNG plots, self-contained HTML."""
