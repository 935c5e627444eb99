//! The store's backend, written once for both databases: [`sql_backend!`]
//! implements the writer's [`Backend`](super::writer::Backend) and the
//! listing, claiming and pruning methods over an `sqlx` pool, running the
//! statements of [`sql`](super::sql) in its database's
//! [`Dialect`](super::sql::Dialect), each wait for the server bounded
//! ([`silence`](super::silence)).

/// Implements [`Backend`](super::writer::Backend) and the listing methods
/// for `$backend`, a struct with a `pool: sqlx::Pool<$db>` field; `$dialect`
/// is its database's [`Dialect`](super::sql::Dialect).
macro_rules! sql_backend {
    ($backend:ty, $db:ty, $name:literal, $dialect:expr) => {
        #[async_trait::async_trait]
        impl $crate::orchestration::store::writer::Backend for $backend {
            async fn write(
                &self,
                batch: &$crate::orchestration::store::rows::Batch,
            ) -> $crate::orchestration::Result<()> {
                use $crate::orchestration::store::sql;
                let fail = |error: sqlx::Error| {
                    $crate::orchestration::store::errors::store_error(
                        concat!("writing to ", $name),
                        &error,
                    )
                };
                let dialect: &sql::Dialect = &$dialect;
                let mut tx = self.pool.begin().await.map_err(fail)?;
                for run in &batch.runs {
                    sqlx::query(sqlx::AssertSqlSafe(dialect.clocked(sql::INSERT_RUN)))
                        .bind(&run.id)
                        .bind(&run.root)
                        .bind(&run.origin)
                        .bind(&run.parent)
                        .bind(&run.resumes)
                        .bind(&run.orchestrator)
                        .bind(&run.label)
                        .bind(run.started_us)
                        .bind(&run.host)
                        .bind(run.pid)
                        .bind(&run.forks)
                        .execute(&mut *tx)
                        .await
                        .map_err(fail)?;
                }
                for chunk in sql::insert_chunks(&batch.events) {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(sql::INSERT_EVENTS);
                    insert.push_values(chunk, |mut row, event| {
                        row.push_bind(&event.root)
                            .push_bind(&event.run)
                            .push_bind(event.at_us)
                            .push_bind(event.kind)
                            .push_bind(&event.body);
                    });
                    insert.build().execute(&mut *tx).await.map_err(fail)?;
                }
                for end in &batch.ends {
                    sqlx::query(sql::END_RUN)
                        .bind(&end.id)
                        .bind(end.status)
                        .bind(end.finished_us)
                        .execute(&mut *tx)
                        .await
                        .map_err(fail)?;
                }
                for (root, totals) in &batch.totals {
                    sqlx::query(sql::ADD_TOTALS)
                        .bind(root)
                        .bind(totals.events)
                        .bind(totals.tokens)
                        .bind(totals.cost_usd)
                        .bind(sql::MAX_TOKENS)
                        .bind(sql::MAX_COST_USD)
                        .execute(&mut *tx)
                        .await
                        .map_err(fail)?;
                }
                tx.commit().await.map_err(fail)
            }

            async fn read_trees(
                &self,
                runs: &[$crate::orchestration::RunId],
            ) -> $crate::orchestration::Result<Vec<$crate::orchestration::JournalEvent>> {
                use sqlx::Row as _;
                use $crate::orchestration::store::sql;
                let fail = |error: sqlx::Error| {
                    $crate::orchestration::store::errors::store_error(
                        concat!("reading from ", $name),
                        &error,
                    )
                };
                use $crate::orchestration::store::silence;
                let mut roots: Vec<String> = Vec::new();
                for run in runs {
                    let root: Option<String> = silence::answered(
                        async {
                            sqlx::query_scalar(sql::ROOT_OF)
                                .bind(run.to_string())
                                .fetch_optional(&self.pool)
                                .await
                                .map_err(fail)
                        },
                        0,
                    )
                    .await?;
                    if let Some(root) = root {
                        if !roots.contains(&root) {
                            roots.push(root);
                        }
                    }
                }
                let mut events = Vec::new();
                for root in &roots {
                    // Row by row: a long history on a slow link is read
                    // as long as rows keep coming; a silent store is not
                    // waited for past the bound.
                    let mut rows = sqlx::query(sql::TREE_EVENTS).bind(root).fetch(&self.pool);
                    while let Some(row) = silence::next_row(&mut rows, fail).await? {
                        let run: String = row.try_get(0).map_err(fail)?;
                        let at_us: i64 = row.try_get(1).map_err(fail)?;
                        let body: String = row.try_get(2).map_err(fail)?;
                        events.push($crate::orchestration::store::rows::decode(
                            &run, at_us, &body,
                        )?);
                    }
                }
                Ok(events)
            }

            async fn claim(
                &self,
                run: $crate::orchestration::RunId,
                by: $crate::orchestration::RunId,
            ) -> $crate::orchestration::Result<
                std::result::Result<$crate::orchestration::RunId, $crate::orchestration::RunId>,
            > {
                use sqlx::Row as _;
                use $crate::orchestration::store::sql;
                let fail = |error: sqlx::Error| {
                    $crate::orchestration::store::errors::store_error(
                        concat!("claiming a run in ", $name),
                        &error,
                    )
                };
                let dialect: &sql::Dialect = &$dialect;
                let info = sqlx::query(sqlx::AssertSqlSafe(dialect.clocked(sql::CLAIM_INFO)))
                    .bind(run.to_string())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(fail)?;
                let Some(info) = info else {
                    return Err($crate::orchestration::OrchestrationError::InvalidConfig(
                        format!(concat!("run {} is not in ", $name), run),
                    ));
                };
                let origin: String = info.try_get(0).map_err(fail)?;
                let resumed_by: Option<String> = info.try_get(1).map_err(fail)?;
                let status: String = info.try_get(2).map_err(fail)?;
                let host: String = info.try_get(3).map_err(fail)?;
                let pid: i64 = info.try_get(4).map_err(fail)?;
                let heartbeat_age_us: Option<i64> = info.try_get(5).map_err(fail)?;
                let started_us: i64 = info.try_get(6).map_err(fail)?;
                let orchestrator: String = info.try_get(7).map_err(fail)?;
                let label: Option<String> = info.try_get(8).map_err(fail)?;
                // A run that claimed it and never started, in a process
                // that is gone (killed, or its store failed, between the
                // claim and the run's start), holds nothing: its claim is
                // taken over, or no run could ever continue this one.
                if let Some(other) = &resumed_by {
                    if !self.never_started(other).await.map_err(fail)? {
                        return Ok(Err($crate::orchestration::store::columns::run_id(other)));
                    }
                }
                let owner = $crate::orchestration::store::owner::Owner {
                    status: &status,
                    host: &host,
                    pid,
                    heartbeat_age_us,
                    started_us,
                };
                if owner.still_running(run) {
                    return Err($crate::orchestration::OrchestrationError::InvalidConfig(
                        format!(
                            "run {run} is still running (process {pid} on {host}); a run \
                             whose process died can be resumed once its heartbeat is {} s old",
                            $crate::orchestration::store::STALE_AFTER.as_secs()
                        ),
                    ));
                }
                // The claim and the claiming run's row, in one transaction.
                let mut tx = self.pool.begin().await.map_err(fail)?;
                let claim = match &resumed_by {
                    None => sqlx::query(sql::CLAIM)
                        .bind(run.to_string())
                        .bind(by.to_string()),
                    Some(other) => sqlx::query(sql::TAKE_OVER_CLAIM)
                        .bind(run.to_string())
                        .bind(by.to_string())
                        .bind(other.clone()),
                };
                let claimed = claim.execute(&mut *tx).await.map_err(fail)?;
                if claimed.rows_affected() == 1 {
                    if let Some(other) = &resumed_by {
                        sqlx::query(sql::ABANDONED_CLAIMER)
                            .bind(other)
                            .execute(&mut *tx)
                            .await
                            .map_err(fail)?;
                    }
                    let now = $crate::orchestration::store::columns::micros(chrono::Utc::now());
                    sqlx::query(sqlx::AssertSqlSafe(dialect.clocked(sql::INSERT_CLAIMER)))
                        .bind(by.to_string())
                        .bind(&origin)
                        .bind(run.to_string())
                        .bind(orchestrator)
                        .bind(label)
                        .bind(now)
                        .bind($crate::orchestration::store::owner::host_name())
                        .bind(i64::from(std::process::id()))
                        .execute(&mut *tx)
                        .await
                        .map_err(fail)?;
                    tx.commit().await.map_err(fail)?;
                    return Ok(Ok($crate::orchestration::store::columns::run_id(&origin)));
                }
                tx.rollback().await.map_err(fail)?;
                // Another process claimed it between the two statements, or
                // pruned it.
                let other: Option<Option<String>> =
                    sqlx::query_scalar("SELECT resumed_by FROM runs WHERE id = $1")
                        .bind(run.to_string())
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(fail)?;
                match other {
                    Some(other) => Ok(Err(other.map_or(by, |other| {
                        $crate::orchestration::store::columns::run_id(&other)
                    }))),
                    None => Err($crate::orchestration::OrchestrationError::InvalidConfig(
                        format!(concat!("run {} is not in ", $name, " (pruned)"), run),
                    )),
                }
            }

            async fn heartbeat(
                &self,
                runs: &[$crate::orchestration::RunId],
            ) -> $crate::orchestration::Result<()> {
                use $crate::orchestration::store::sql;
                let dialect: &sql::Dialect = &$dialect;
                let statement = dialect.clocked(sql::HEARTBEAT);
                for run in runs {
                    sqlx::query(sqlx::AssertSqlSafe(statement.as_str()))
                        .bind(run.to_string())
                        .execute(&self.pool)
                        .await
                        .map_err(|error| {
                            $crate::orchestration::store::errors::store_error(
                                concat!("writing a heartbeat to ", $name),
                                &error,
                            )
                        })?;
                }
                Ok(())
            }

            async fn close(&self) {
                self.pool.close().await;
            }

            async fn summaries(
                &self,
                filter: &str,
                bind: Option<String>,
                limit: usize,
            ) -> $crate::orchestration::Result<Vec<$crate::orchestration::store::RunSummary>>
            {
                use sqlx::Row as _;
                use $crate::orchestration::store::columns::{
                    count_from_real, finite_cost, from_micros, run_id,
                };
                use $crate::orchestration::store::{owner::Owner, sql};
                let fail = |error: sqlx::Error| {
                    $crate::orchestration::store::errors::store_error(
                        concat!("listing runs in ", $name),
                        &error,
                    )
                };
                let dialect: &sql::Dialect = &$dialect;
                let text = format!(
                    "{} {filter} ORDER BY started_us DESC, id DESC LIMIT {}",
                    dialect.clocked(sql::SUMMARY),
                    i64::try_from(limit).unwrap_or(i64::MAX)
                );
                let mut query = sqlx::query(sqlx::AssertSqlSafe(text));
                if let Some(value) = bind {
                    query = query.bind(value);
                }
                let rows = query.fetch_all(&self.pool).await.map_err(fail)?;
                let mut summaries = Vec::with_capacity(rows.len());
                for row in rows {
                    let id: String = row.try_get(0).map_err(fail)?;
                    let origin: String = row.try_get(1).map_err(fail)?;
                    let resumes: Option<String> = row.try_get(2).map_err(fail)?;
                    let resumed_by: Option<String> = row.try_get(3).map_err(fail)?;
                    let status: String = row.try_get(6).map_err(fail)?;
                    let started: i64 = row.try_get(7).map_err(fail)?;
                    let finished: Option<i64> = row.try_get(8).map_err(fail)?;
                    let events: i64 = row.try_get(9).map_err(fail)?;
                    // A REAL here is an SQLite sum that overflowed, written
                    // before sums saturated (see `ADD_TOTALS`).
                    let tokens: i64 = match row.try_get::<i64, _>(10) {
                        Ok(tokens) => tokens,
                        Err(error) => row
                            .try_get::<f64, _>(10)
                            .map(count_from_real)
                            .map_err(|_| fail(error))?,
                    };
                    let cost_usd: f64 = row.try_get(11).map_err(fail)?;
                    let host: String = row.try_get(12).map_err(fail)?;
                    let pid: i64 = row.try_get(13).map_err(fail)?;
                    let heartbeat_age_us: Option<i64> = row.try_get(14).map_err(fail)?;
                    let forks: Option<String> = row.try_get(15).map_err(fail)?;
                    // A row that says `running` whose process is gone is a
                    // crashed run, not a running one.
                    let owner = Owner {
                        status: &status,
                        host: &host,
                        pid,
                        heartbeat_age_us,
                        started_us: started,
                    };
                    let id = run_id(&id);
                    summaries.push($crate::orchestration::store::RunSummary {
                        id,
                        origin: run_id(&origin),
                        resumes: resumes.as_deref().map(run_id),
                        resumed_by: resumed_by.as_deref().map(run_id),
                        forks: forks.as_deref().map(run_id),
                        orchestrator: row.try_get(4).map_err(fail)?,
                        label: row.try_get(5).map_err(fail)?,
                        status: owner.status(id),
                        started: from_micros(started),
                        finished: finished.map(from_micros),
                        events: u64::try_from(events).unwrap_or(0),
                        tokens: u64::try_from(tokens).unwrap_or(0),
                        cost_usd: finite_cost(cost_usd),
                    });
                }
                Ok(summaries)
            }

            async fn prune_runs(
                &self,
                which: $crate::orchestration::store::Prune,
            ) -> $crate::orchestration::Result<u64> {
                use sqlx::Row as _;
                use $crate::orchestration::store::{prune::TopRun, silence, sql};
                let fail = |error: sqlx::Error| {
                    $crate::orchestration::store::errors::store_error(
                        concat!("pruning ", $name),
                        &error,
                    )
                };
                let dialect: &sql::Dialect = &$dialect;
                // Chosen and deleted in one transaction that other
                // processes cannot write under (see `PruneLock`). Every
                // wait for the store is bounded (see `silence`): each
                // statement, each row read, and each chunk of a tree's
                // events deleted (see `EVENTS_PER_DELETE`) — a big prune
                // goes on as long as the store answers.
                let lock = &dialect.prune_lock;
                let mut tx = silence::answered(
                    async { self.pool.begin_with(lock.begin).await.map_err(fail) },
                    0,
                )
                .await?;
                for statement in lock.then {
                    silence::answered(
                        async {
                            sqlx::query(*statement)
                                .execute(&mut *tx)
                                .await
                                .map_err(fail)
                        },
                        0,
                    )
                    .await?;
                }
                let mut runs = Vec::new();
                {
                    let choosing = dialect.clocked(sql::TOP_LEVEL_RUNS);
                    let mut rows =
                        sqlx::query(sqlx::AssertSqlSafe(choosing.as_str())).fetch(&mut *tx);
                    while let Some(row) = silence::next_row(&mut rows, fail).await? {
                        runs.push(TopRun {
                            id: row.try_get(0).map_err(fail)?,
                            origin: row.try_get(1).map_err(fail)?,
                            status: row.try_get(2).map_err(fail)?,
                            host: row.try_get(3).map_err(fail)?,
                            pid: row.try_get(4).map_err(fail)?,
                            heartbeat_age_us: row.try_get(5).map_err(fail)?,
                            started_us: row.try_get(6).map_err(fail)?,
                            forks: row.try_get(7).map_err(fail)?,
                        });
                    }
                }
                // The finished runs `which` selects (a crashed one counts as
                // finished, a live one never does), in whole chains of
                // resumes only: a run that a kept (or running) run
                // continues, directly or not, is what resuming the kept one
                // reads.
                let doomed = $crate::orchestration::store::prune::chosen_for_pruning(which, &runs);
                for root in &doomed {
                    let mut after = i64::MIN;
                    loop {
                        let mut next: Vec<(i64, i64)> = Vec::new();
                        {
                            let mut rows = sqlx::query(sql::EVENT_SIZES)
                                .bind(root)
                                .bind(after)
                                .bind(sql::EVENTS_PER_DELETE)
                                .fetch(&mut *tx);
                            while let Some(row) = silence::next_row(&mut rows, fail).await? {
                                next.push((
                                    row.try_get(0).map_err(fail)?,
                                    row.try_get::<Option<i64>, _>(1).map_err(fail)?.unwrap_or(0),
                                ));
                            }
                        }
                        let chunk = sql::delete_chunk(&next);
                        let Some(&(last, _)) = chunk.last() else {
                            break;
                        };
                        silence::answered(
                            async {
                                sqlx::query(sql::DELETE_EVENTS)
                                    .bind(root)
                                    .bind(after)
                                    .bind(last)
                                    .execute(&mut *tx)
                                    .await
                                    .map_err(fail)
                            },
                            0,
                        )
                        .await?;
                        let all = chunk.len() == next.len()
                            && i64::try_from(next.len()).unwrap_or(i64::MAX)
                                < sql::EVENTS_PER_DELETE;
                        if all {
                            break;
                        }
                        after = last;
                    }
                    silence::answered(
                        async {
                            sqlx::query(sql::DELETE_RUNS)
                                .bind(root)
                                .execute(&mut *tx)
                                .await
                                .map_err(fail)
                        },
                        0,
                    )
                    .await?;
                }
                silence::answered(async { tx.commit().await.map_err(fail) }, 0).await?;
                Ok(doomed.len() as u64)
            }
        }

        impl $backend {
            /// Whether run `claimer`, which claimed a run, never started
            /// and never will: none of its events was stored and its
            /// process is gone (see `Owner::still_running`). A claimer the
            /// store has no row of (a claim made before claims wrote one)
            /// cannot be told apart from a live one: it is not.
            async fn never_started(&self, claimer: &str) -> std::result::Result<bool, sqlx::Error> {
                use sqlx::Row as _;
                use $crate::orchestration::store::sql;
                let dialect: &sql::Dialect = &$dialect;
                let Some(info) =
                    sqlx::query(sqlx::AssertSqlSafe(dialect.clocked(sql::CLAIMER_INFO)))
                        .bind(claimer)
                        .fetch_optional(&self.pool)
                        .await?
                else {
                    return Ok(false);
                };
                let status: String = info.try_get(0)?;
                let host: String = info.try_get(1)?;
                let pid: i64 = info.try_get(2)?;
                let heartbeat_age_us: Option<i64> = info.try_get(3)?;
                let started_us: i64 = info.try_get(4)?;
                let events: i64 = info.try_get(5)?;
                let owner = $crate::orchestration::store::owner::Owner {
                    status: &status,
                    host: &host,
                    pid,
                    heartbeat_age_us,
                    started_us,
                };
                Ok(events == 0
                    && !owner.still_running($crate::orchestration::store::columns::run_id(claimer)))
            }
        }
    };
}
pub(crate) use sql_backend;
