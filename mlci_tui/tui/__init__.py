"""The dashboard: a Textual viewer of the run store. The only package that
imports Textual."""
