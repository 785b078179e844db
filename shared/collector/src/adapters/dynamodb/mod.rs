//! DynamoDB hot store (see docs/AWS.md for the table design).
