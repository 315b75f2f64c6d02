# The two commands that set everything up on a fresh machine: `make course` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The install is redone only when the dependency files change.
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | sha256sum | cut -c1-12)
PIP    := $(BIN)/python -m pip
SEED   ?= 0

.PHONY: course test lab install data models models-rebuild release grade bench sync system-deps clean

# `make course` times each set-up step (step, seconds, finished unix time) into $(SETUP_TIMES);
# run_course.py stores them as the "setup" of artifacts/course_summary.json beside the notebooks.
ARTIFACTS   = $${LABKIT_ARTIFACTS:-artifacts}
SETUP_TIMES = $(ARTIFACTS)/course_setup.tsv
TIMED       = t=$$(date +%s); $(MAKE) --no-print-directory $(1) && \
              printf '%s\t%s\t%s\n' $(1) $$(($$(date +%s) - t)) $$(date +%s) >> $(SETUP_TIMES)

course: ## venv + data + base models + every chapter notebook executed + artifacts/course_summary.json
	@mkdir -p $(ARTIFACTS) && rm -f $(SETUP_TIMES)
	@$(call TIMED,install)
	@$(call TIMED,data)
	@$(call TIMED,models)
	$(BIN)/python scripts/run_course.py --setup-times $(SETUP_TIMES)

test: install ## install and run the whole test suite
	$(BIN)/python -m pytest

# JupyterLab refuses to run as root ("Running as root is not recommended") unless given --allow-root:
# containers and many cloud VMs log in as root, so the flag is added there (and only there).
lab: install data ## open JupyterLab on the course
	$(BIN)/jupyter lab $$([ "$$(id -u)" = 0 ] && echo --allow-root) notebooks

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt torch==2.14.1 torchvision==0.29.1
	$(PIP) install -q -c constraints.txt -e '.[course,test,serve,ui-test]'
	# ultralytics pulls the GUI build of OpenCV; the course uses the headless 4.x build (HOG, Haar).
	$(PIP) uninstall -y -q opencv-python || true
	$(PIP) install -q -c constraints.txt --force-reinstall --no-deps 'opencv-python-headless<5'
	$(BIN)/python -c "import cv2; assert hasattr(cv2, 'HOGDescriptor'), cv2.__version__"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	rm -f $(VENV)/.installed-*
	touch $@

data: install ## generate the embedded dataset (reused when already there)
	$(BIN)/python -c "from labkit.data.synth import ensure_dataset; print(ensure_dataset(seed=$(SEED)))"

models: install data ## the base models the chapters need: verified shipped checkpoints, else built once (labkit models load)
	$(BIN)/labkit models load

models-rebuild: install data ## train every base model here from scratch (not part of `make course`); resumes after an interruption
	$(BIN)/labkit models build --all

release: install ## regenerate the learner copies: lessons (answers stubbed) and graded labs (nbgrader)
	$(BIN)/python scripts/release.py

sync: install ## regenerate setup cells and badges from course.yaml
	$(BIN)/python scripts/sync_course.py

SUBMISSIONS ?= autograder/submitted
LAB ?= ch01_quiz
JOBS ?= 1
grade: install ## autograde SUBMISSIONS/<student>/LAB/*.ipynb under bubblewrap -> graded/LAB/grades.csv + feedback/
	$(BIN)/labkit grade $(SUBMISSIONS) --lab $(LAB) --out graded/$(LAB) --jobs $(JOBS)

# benchmarks/tracking.py lists a peer tracker that is not installed (the `bench` extra, see
# pyproject.toml) as such and goes on.
bench: install ## benchmarks: figures go to artifacts/bench_*.json
	$(BIN)/python benchmarks/metrics_detection.py
	$(BIN)/python benchmarks/metrics_tracking.py
	$(BIN)/python benchmarks/grading.py
	$(BIN)/python benchmarks/robust_int8.py
	$(BIN)/python benchmarks/robust_int8_effects.py
	$(BIN)/python benchmarks/tracking.py

system-deps: ## Debian packages: bubblewrap (grading sandbox), opencv-doc (vtest.avi), chromium (demo browser test); needs root
	apt-get update -qq && apt-get install -y -qq --no-install-recommends bubblewrap opencv-doc chromium

clean:
	rm -rf artifacts data/generated
