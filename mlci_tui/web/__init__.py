"""`mlci serve`: the dashboard in a browser, one `mlci tui` process per tab, behind
a token. Below the commands, beside the dashboard: it starts dashboards as
processes and imports nothing of them."""
