-- A trace store as mascope wrote it with store schema v1 (before steps had inputs).
BEGIN TRANSACTION;
CREATE TABLE annotations (
	id VARCHAR NOT NULL, 
	step_index INTEGER, 
	taxonomy VARCHAR NOT NULL, 
	mode VARCHAR NOT NULL, 
	present BOOLEAN NOT NULL, 
	confidence FLOAT, 
	evidence_steps JSON NOT NULL, 
	rationale TEXT NOT NULL, 
	annotator VARCHAR NOT NULL, 
	prompt_version VARCHAR, 
	job_id VARCHAR, 
	created_at DATETIME NOT NULL, 
	run_id VARCHAR NOT NULL, 
	PRIMARY KEY (id)
);
INSERT INTO "annotations" VALUES('01JV1000000000000000000AN1',NULL,'mast','FM-1.3',0,NULL,'[]','','rule:step-repetition',NULL,NULL,'2025-01-02 03:04:10.000000','01JV1000000000000000000000');
CREATE TABLE attributions (
	id VARCHAR NOT NULL, 
	method VARCHAR NOT NULL, 
	agent VARCHAR, 
	step_index INTEGER, 
	confidence FLOAT, 
	reason TEXT NOT NULL, 
	intervention TEXT, 
	verified BOOLEAN, 
	replay_run_id VARCHAR, 
	with_ground_truth BOOLEAN, 
	annotator VARCHAR NOT NULL, 
	job_id VARCHAR, 
	created_at DATETIME NOT NULL, 
	run_id VARCHAR NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE job_items (
	job_id VARCHAR NOT NULL, 
	run_id VARCHAR NOT NULL, 
	status VARCHAR NOT NULL, 
	attempts INTEGER NOT NULL, 
	error VARCHAR, 
	cost_usd FLOAT NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (job_id, run_id)
);
CREATE TABLE jobs (
	id VARCHAR NOT NULL, 
	kind VARCHAR NOT NULL, 
	config JSON NOT NULL, 
	config_hash VARCHAR NOT NULL, 
	status VARCHAR NOT NULL, 
	total INTEGER NOT NULL, 
	done INTEGER NOT NULL, 
	failed INTEGER NOT NULL, 
	skipped INTEGER NOT NULL, 
	cost_usd FLOAT NOT NULL, 
	error VARCHAR, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE mascope_meta (
	"key" VARCHAR NOT NULL, 
	value VARCHAR NOT NULL, 
	PRIMARY KEY ("key")
);
INSERT INTO "mascope_meta" VALUES('schema_version','1');
CREATE TABLE runs (
	id VARCHAR NOT NULL, 
	parent_run_id VARCHAR, 
	fork_step INTEGER, 
	intervention JSON, 
	team VARCHAR NOT NULL, 
	spec JSON, 
	spec_hash VARCHAR, 
	task TEXT NOT NULL, 
	ground_truth TEXT, 
	status VARCHAR NOT NULL, 
	final_answer TEXT, 
	termination_reason VARCHAR, 
	started_at DATETIME NOT NULL, 
	finished_at DATETIME, 
	input_tokens INTEGER NOT NULL, 
	output_tokens INTEGER NOT NULL, 
	cost_usd FLOAT, 
	step_count INTEGER NOT NULL, 
	source VARCHAR NOT NULL, 
	source_key VARCHAR, 
	metadata JSON, 
	owner VARCHAR, 
	PRIMARY KEY (id)
);
INSERT INTO "runs" VALUES('01JV1000000000000000000000',NULL,NULL,'null','math','null',NULL,'What is 2 + 3?',NULL,'succeeded','ANSWER: 5','verifier_passed','2025-01-02 03:04:05.000000','2025-01-02 03:04:09.000000',50,6,NULL,3,'native',NULL,'{}',NULL);
CREATE TABLE steps (
	idx INTEGER NOT NULL, 
	agent VARCHAR NOT NULL, 
	kind VARCHAR NOT NULL, 
	content TEXT NOT NULL, 
	data JSON, 
	model VARCHAR, 
	input_tokens INTEGER, 
	output_tokens INTEGER, 
	latency_s FLOAT, 
	cost_usd FLOAT, 
	checkpoint_id VARCHAR, 
	error VARCHAR, 
	created_at DATETIME NOT NULL, 
	id INTEGER NOT NULL, 
	run_id VARCHAR NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_steps_run_idx UNIQUE (run_id, idx)
);
INSERT INTO "steps" VALUES(0,'solver','message','ANSWER: 6',NULL,'scripted',20,3,NULL,NULL,NULL,NULL,'2025-01-02 03:04:06.000000',1,'01JV1000000000000000000000');
INSERT INTO "steps" VALUES(1,'check','verdict','FAILED: recount','{"passed": false}',NULL,NULL,NULL,NULL,NULL,NULL,NULL,'2025-01-02 03:04:06.000000',2,'01JV1000000000000000000000');
INSERT INTO "steps" VALUES(2,'solver','message','ANSWER: 5',NULL,'scripted',30,3,NULL,NULL,NULL,NULL,'2025-01-02 03:04:06.000000',3,'01JV1000000000000000000000');
CREATE INDEX ix_annotations_run ON annotations (run_id);
CREATE INDEX ix_annotations_mode ON annotations (mode, present, run_id);
CREATE INDEX ix_attributions_run ON attributions (run_id);
CREATE INDEX ix_job_items_status ON job_items (job_id, status);
CREATE INDEX ix_runs_parent ON runs (parent_run_id);
CREATE INDEX ix_runs_team_id ON runs (team, id);
CREATE UNIQUE INDEX ix_runs_source_key ON runs (source_key);
CREATE INDEX ix_runs_status_id ON runs (status, id);
COMMIT;
