"""What the sandbox corrects or adds in moto's EC2 and autoscaling, installed on moto's own
response and backend classes so that it is served over HTTP like any other action; and the
base images it seeds moto's backends with."""
