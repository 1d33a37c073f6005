"""Infrastructure as code: orgalerts' desired state written as templates other tools deploy.

Owns: `cloudformation` (the four CloudFormation templates `orgalerts export cloudformation` writes, and the
`templates(config, scope)` function the StackSets engine deploys from). A layer between the engine and the sides:
it reads the sides' desired state and their CloudFormation forms, never AWS.
"""
