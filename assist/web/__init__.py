"""The web console: pages for agents, leads and supervisors."""
