"""`deepfit advise`: advice.py runs the bake-off and decides, rules.py holds the guide's rules and
the evidence override, report.py writes advise.json and advise.html."""
