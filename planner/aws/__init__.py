"""AWS access for the planner: sessions, throttling retries, the live actuator, CloudWatch.

Everything here takes its boto3 clients from `planner.aws.session.AwsConnection`,
so the region, the endpoint (a moto server in tests) and the retry policy are set
in one place. boto3 is imported lazily: importing this package imports nothing heavy.
"""
