"""Reports of what the video front ends keep: text/JSON summaries (:mod:`.summary`) and pictures (:mod:`.plots`).

Used by the CLI and the notebooks; imports the engines' typed results, never the CLI.
"""
