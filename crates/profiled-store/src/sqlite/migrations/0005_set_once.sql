-- Top-level property keys written by set_once (a JSON array): they keep the oldest value
-- when profiles merge.
ALTER TABLE profiles ADD COLUMN set_once TEXT NOT NULL DEFAULT '[]';
