"""Typer commands: parse options, call one service, render the result."""
