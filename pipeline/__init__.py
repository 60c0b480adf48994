"""The pipeline: users and roles, customers, deals and their stages, touches, the
terms policy and the domain event. The bottom app: it imports no other app of
ours; billing and audits stand on it (README, "How the code is laid out")."""
