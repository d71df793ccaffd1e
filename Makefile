# The verbs a user types. Each installs what it needs into git-ignored folders (.venv, .local).
.PHONY: dev test staging-test lint build bench fuzz deploy docs migrate clean

## dev: the whole API on http://127.0.0.1:9000/v1 with DynamoDB Local (data kept in .local/)
dev:
	@scripts/dev.sh

## test: every test (unit, in-process handlers, concurrency, end to end, Schemathesis) against DynamoDB Local
test:
	@scripts/test.sh

## staging-test: the black-box HTTP tests against a deployed stage (STAGING_API_URL, STAGING_TOKEN,
## STAGING_TOKEN_2); without them it says it skipped and exits 0
staging-test:
	@scripts/staging-test.sh

## lint: formatting, clippy and the SAM template checks
lint:
	@scripts/lint.sh

## build: release binaries of every function for Lambda (arm64), as sam build does
build:
	@scripts/build.sh

## bench: cold start, warm overhead, DynamoDB cost, size, memory, scale and throughput, measured
## against DynamoDB Local; writes bench/RESULTS.md and bench/chart.png (see the README, Performance)
bench:
	@scripts/bench.sh

## fuzz: every cargo-fuzz target (field masks, filters, page tokens, ids, bodies), FUZZ_SECONDS each
fuzz:
	@scripts/fuzz.sh

## deploy: sam build, then sam deploy --guided (asks for the stack's parameters the first time)
deploy:
	@scripts/deploy.sh

## migrate: rewrites the local table (.local/dynamodb-data) written by an earlier version into
## this version's layout (make dev says when)
migrate:
	@scripts/migrate.sh

## docs: openapi.yaml rendered to .local/docs/index.html
docs:
	@scripts/docs.sh

clean:
	cargo clean
	rm -rf .aws-sam
