// compose-check validates compose files the way `docker compose config` does, with no Docker
// engine: it loads them with compose-go (the library Docker Compose v2 is built on; version
// pinned in go.mod), which applies the Compose Specification's JSON schema, interpolation,
// normalisation and the consistency checks (undefined volumes, secrets, networks, services),
// then prints the resolved project as YAML. Exit 1 with the loader's message on a problem.
//
//	go build -o compose-check . && ./compose-check ../../docker-compose.yml
//
// tests/deploy/test_docker_files.py builds and runs it.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: compose-check COMPOSE_FILE...")
		os.Exit(2)
	}
	opts, err := cli.NewProjectOptions(
		os.Args[1:],
		cli.WithOsEnv,
		cli.WithConsistency(true),
		cli.WithResolvedPaths(false),
	)
	if err != nil {
		fail(err)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		fail(err)
	}
	out, err := project.MarshalYAML()
	if err != nil {
		fail(err)
	}
	if _, err := os.Stdout.Write(out); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "error:", err)
	os.Exit(1)
}
