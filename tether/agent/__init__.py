"""The long-running agent: watches Apps and GitSources, reconciles them continuously, detects
drift through shared watches, elects a leader, serves webhooks, metrics and health."""
