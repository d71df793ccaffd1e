# The verbs a user types. Each installs what it needs into git-ignored folders (.venv, .local).
.PHONY: dev test lint build docs clean

## dev: the whole API on http://127.0.0.1:9000/v1 with DynamoDB Local (data kept in .local/)
dev:
	@scripts/dev.sh

## test: every test (unit, in-process handlers, concurrency, end to end) against DynamoDB Local
test:
	@scripts/test.sh

## lint: formatting, clippy and the SAM template checks
lint:
	@scripts/lint.sh

## build: release binaries of the nine functions for Lambda (arm64), as sam build does
build:
	@. scripts/lib.sh && ensure_cargo_lambda && cargo lambda build --release --arm64

## docs: openapi.yaml rendered to .local/docs/index.html
docs:
	@scripts/docs.sh

clean:
	cargo clean
	rm -rf .aws-sam
