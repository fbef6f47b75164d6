"""Registry and catalog commands of the kadence CLI."""
