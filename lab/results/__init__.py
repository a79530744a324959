"""What a run is and what it keeps: the experiment's configurations, the run record and its timeline, the
files of a results folder, and a decision's record. Reports and comparisons read these alone."""
