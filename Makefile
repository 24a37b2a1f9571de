# helixflow: `make run` aligns a simulated data set end to end; `make test` runs the test suite.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
SIM := .helixflow/sim

# No telemetry from this machine; nothing outside it can be reached anyway.
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
export RAY_USAGE_STATS_ENABLED := 0
export RAY_AUTH_MODE := disabled

.PHONY: install test-deps run test serve serve-down slurm-up slurm-down bench bench-data bench-kernel bench-mapping bench-scale bench-throughput soak chaos clean

install: $(STAMP)

# Bytecode is compiled once here: with PYTHONDONTWRITEBYTECODE set (as on these machines)
# every process, each Ray worker included, would otherwise compile Ray, Numba and Prefect
# from source as it imports them (ray.init took 10-16 s instead of 5; a worker's start 2 s
# more). The one file left out is for Python 3.12+ and is never imported here.
$(STAMP): pyproject.toml requirements.lock Makefile
	@command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet uv
	@test -x $(PY) || uv venv --quiet --python python3.11 $(VENV) || uv venv --quiet $(VENV)
	VIRTUAL_ENV=$(VENV) uv pip install --quiet -r requirements.lock
	VIRTUAL_ENV=$(VENV) uv pip install --quiet --no-deps -e .
	$(PY) -m compileall -q -j 0 -x '/_typing_31[2-9]\.py$$' \
		"$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" >/dev/null
	@touch $(STAMP)

run: $(STAMP)
	$(PY) -m flows.simulate --output $(SIM)
	$(PY) -m flows.pipeline --reads $(SIM)/reads.fq.gz --reference $(SIM)/reference.fa \
		--output .helixflow/out --staging-dir .helixflow/fsx --ranks 2

test-deps:
	bash deployments/install-test-deps.sh

# A one-node Slurm (munged, slurmctld, slurmd) on this machine; installs it when missing.
slurm-up:
	bash deployments/local-slurm/slurm.sh up

slurm-down:
	bash deployments/local-slurm/slurm.sh down

# Slurm is started here; the tests start the rest themselves: Ray, mpiexec ranks, a
# Prefect server and worker.
test: $(STAMP) test-deps slurm-up
	$(PY) -m pytest -q

# A local Prefect server (UI on http://127.0.0.1:4200), the helixflow-local work pool,
# every deployment in prefect.yaml, and a worker. HELIXFLOW_PREFECT_PORT changes the port.
serve: $(STAMP)
	bash deployments/prefect/serve.sh up

serve-down:
	bash deployments/prefect/serve.sh down

# The pipeline over a small settings grid (data size, shard size, Ray workers, ranks, kernel,
# backend), per-stage figures and cost per EC2 instance type: .helixflow/bench/report/report.md.
# Slurm rows are measured when a controller answers (make slurm-up), cuda rows on a GPU.
bench: $(STAMP)
	$(PY) -m bench pipeline --work .helixflow/bench

# Data plane: 10M simulated reads (plain and gzip FASTQ) through ingest + Ray encode + stage,
# against a single-process numpy parse; 1-GiB round trips through S3 on loopback: s3rver
# (deployments/s3rver/install.sh) and Ceph's radosgw on a one-node cluster
# (deployments/ceph-rgw/rgw.sh, which installs Debian's ceph-mon, ceph-osd and radosgw).
bench-data: $(STAMP)
	bash deployments/s3rver/install.sh
	bash deployments/ceph-rgw/rgw.sh install
	$(PY) -m bench data --reads 10000000

bench-kernel: $(STAMP)
	$(PY) -m bench kernel

# Mapping accuracy and time on a simulated 4-Mbp genome with repeats, 200,000 reads;
# minimap2 -x sr side by side when it is installed (apt-get install minimap2).
bench-mapping: $(STAMP)
	$(PY) -m bench mapping

# Index and map 100-Mbp, 300-Mbp and 1-Gbp synthetic genomes, minimap2 -x sr beside it (about 8 min here).
bench-scale: $(STAMP)
	$(PY) -m bench scale

# helixflow's CLI beside minimap2 -ax sr -t 2 on E. coli K-12 with 200k and 2M dwgsim reads (pairs): wall,
# seeding + alignment, peak RSS of every process, accuracy, cost per 30x genome (about 12 min here,
# the first time 4 more to simulate the reads).
bench-throughput: $(STAMP) test-deps
	$(PY) -m bench throughput

# 2M simulated reads aligned three times from scratch (fresh staging, fresh Numba cache): every
# run must exit 0 and write the same PAF byte for byte.
soak: $(STAMP)
	$(PY) -m bench soak

# One fault a row through the CLI, then the user's rerun: nothing lost, output identical to a
# clean run; the table's last line says whether every row held.
chaos: $(STAMP)
	$(PY) -m bench chaos

clean:
	rm -rf .helixflow .pytest_cache
