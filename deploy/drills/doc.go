// Package drills holds the fault drills: tests that run `noticerelay
// bench` through the compose deployment of docker-compose.yml (three NATS
// nodes, two relays) while a fault is injected with the docker CLI, and
// then check the guarantees (nothing lost, misrouted or handed out under a
// second delivery id) and the audit log (`audit verify`).
//
// They run only with NR_DRILLS=1 against a running deployment; .ci/run
// builds the images, brings the deployment up, runs them and takes it down:
//
//	go run ./deploy/build && docker compose up --build -d
//	NR_DRILLS=1 go test -count=1 -v -timeout 30m ./deploy/drills
//	docker compose down -v
package drills
