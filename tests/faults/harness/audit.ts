/**
 * Test-only instrumentation of the suite's template database (never a migration): every UPDATE that
 * leaves a job row `completed` or `failed` is logged in `fault_audit`. A job whose result was written
 * once has exactly one entry; a second write of its result (a rerun overwriting it, a late write from
 * a killed attempt) shows up as a second entry. That is how the suite counts duplicated effects.
 */
export const auditTriggerSql = `
  create table fault_audit (
    id bigserial primary key,
    job_id uuid not null,
    old_state text not null,
    new_state text not null,
    attempts_made int not null,
    result jsonb,
    at timestamptz not null default clock_timestamp()
  );
  create index fault_audit_job_id on fault_audit (job_id);
  create function fault_audit_jobs() returns trigger language plpgsql as $$
  begin
    if new.state in ('completed', 'failed') then
      insert into fault_audit (job_id, old_state, new_state, attempts_made, result)
      values (new.id, old.state, new.state, new.attempts_made, new.result);
    end if;
    return new;
  end $$;
  create trigger fault_audit_jobs after update on jobs for each row execute function fault_audit_jobs();
`;
