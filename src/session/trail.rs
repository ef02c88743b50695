//! A session's incident trail, begun once its debug container runs and closed after teardown:
//! the Events on the pod (events.rs) and the local recording with its sidecar
//! (output/recording.rs). Neither can fail the session: what cannot be written is one note,
//! on stderr while the session runs, in the sidecar for what its hand-off (handoff.rs) could
//! not write after it ended.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::core::v1::Event;

use crate::base::tap::SharedTap;
use crate::kube::cluster::Cluster;
use crate::kube::exec::Ending;
use crate::output::printer::Printer;
use crate::output::recording::{self, Recording, SessionRecord};
use crate::session::events::{self, End, Trail};
use crate::session::handoff;

/// The recording in progress, its sidecar and where that goes.
struct Local {
    recording: Arc<Recording>,
    record: SessionRecord,
    dir: PathBuf,
}

pub struct SessionTrail<'a> {
    pub events: events::Recorder<'a>,
    local: Option<Local>,
    clock: Instant,
}

/// How the recording's header sizes a session: its terminal's, else a plain 80x24.
pub fn header_size(interactive: bool) -> (u16, u16) {
    interactive
        .then(crate::base::terminal::size)
        .flatten()
        .map_or((80, 24), |s| (s.width, s.height))
}

impl<'a> SessionTrail<'a> {
    /// Starts the recording (unless turned off) and its sidecar.
    pub fn begin(
        cluster: &'a Cluster,
        printer: &'a Printer,
        trail: Trail,
        options: &recording::RecordOptions,
        interactive: bool,
    ) -> Self {
        let local = options
            .enabled
            .then(|| start_local(&trail, options, interactive, printer))
            .flatten();
        SessionTrail {
            events: events::Recorder::new(cluster, printer, trail),
            local,
            clock: Instant::now(),
        }
    }

    pub fn tap(&self) -> Option<SharedTap> {
        self.local
            .as_ref()
            .map(|l| Arc::clone(&l.recording) as SharedTap)
    }

    /// The first Event (added or reused); its name when written.
    pub async fn started(&self, reused: bool) -> Option<String> {
        self.events
            .write(events::started(&self.events.trail, reused))
            .await
    }

    /// The first Event (added or reused), named but not yet written: a session writes it
    /// beside its work ([`events::Recorder::post`]) and hands it on to [`Self::finish`] in
    /// case no answer has come by the end.
    pub fn first_event(&self, reused: bool) -> Option<Event> {
        self.events
            .event(events::started(&self.events.trail, reused))
    }

    /// The end of a session's trail that nobody waits for. `answered`: the first Event's name
    /// (or `None` when refused), if its answer came (an attach waits for it); otherwise
    /// `first` is written again, with its name, an Event already there counting as written.
    /// What is left to write (that and the last Event) goes to the hand-off
    /// (session/handoff.rs), which completes the sidecar once written; the names known now
    /// are returned. Without a hand-off, they are written here.
    pub async fn finish(
        mut self,
        answered: Option<Option<String>>,
        first: Option<Event>,
        ended: Option<&Ending>,
        printer: &Printer,
    ) -> Vec<String> {
        let unanswered = match answered {
            Some(_) => None,
            None => first,
        };
        let pending: Vec<Event> = unanswered.into_iter().chain(self.last(ended)).collect();
        let mut names: Vec<String> = answered.flatten().into_iter().collect();
        if !handoff::enabled() {
            for event in pending {
                names.extend(self.events.post(event).await);
            }
            return self.close(names, ended, printer);
        }
        let record = self.record_path();
        let names = self.close(names, ended, printer);
        if let Err(pending) = handoff::hand_off(self.events.cluster(), pending, record.clone()) {
            // No process to hand them to: written here after all.
            let mut written = Vec::new();
            for event in &pending {
                written.extend(self.events.post(event.clone()).await);
            }
            if let Some(path) = &record {
                handoff::complete(path, &pending, &written, None);
            }
        }
        names
    }

    /// The last Event, named now; `None` after a refusal.
    fn last(&self, ended: Option<&Ending>) -> Option<Event> {
        self.events.event(events::ended(
            &self.events.trail,
            end_of(ended),
            self.clock.elapsed(),
        ))
    }

    /// Where the session's sidecar is, when it is recorded.
    fn record_path(&self) -> Option<PathBuf> {
        self.local
            .as_ref()
            .map(|l| l.dir.join(format!("{}.json", l.record.id)))
    }

    /// The recording closed and its sidecar completed, with the Events written so far
    /// (`names`). Returns them.
    fn close(
        &mut self,
        names: Vec<String>,
        ended: Option<&Ending>,
        printer: &Printer,
    ) -> Vec<String> {
        let end = end_of(ended);
        if let Some(mut local) = self.local.take() {
            let marker = match end {
                End::Exited(code) => format!("exit code {code}"),
                End::Interrupted(signal) => format!("interrupted by signal {signal}"),
                End::Failed => "ended without an exit code".to_string(),
            };
            let (bytes, truncated) = local.recording.finish(&marker);
            local.record.end = Some(jiff::Timestamp::now().to_string());
            local.record.exit_code = match end {
                End::Exited(code) => Some(code),
                _ => None,
            };
            local.record.interrupted = matches!(end, End::Interrupted(_));
            local.record.bytes = bytes;
            local.record.truncated = truncated;
            local.record.events = names.clone();
            if let Err(e) = recording::write_record(&local.dir, &local.record) {
                printer.note(&format!(
                    "the session's record could not be completed in {} ({e})",
                    local.dir.display()
                ));
            }
        }
        names
    }
}

fn end_of(ended: Option<&Ending>) -> End {
    match ended {
        Some(Ending::Exited(code)) => End::Exited(*code),
        Some(Ending::Interrupted(signal)) => End::Interrupted(*signal),
        None => End::Failed,
    }
}

fn start_local(
    trail: &Trail,
    options: &recording::RecordOptions,
    interactive: bool,
    printer: &Printer,
) -> Option<Local> {
    let Some(dir) = recording::sessions_dir() else {
        printer.note("not recorded: neither $XDG_STATE_HOME nor $HOME is set");
        return None;
    };
    let start = jiff::Timestamp::now();
    let id = recording::new_id(start);
    let path = options
        .path
        .clone()
        .unwrap_or_else(|| dir.join(format!("{id}.cast")));
    let title = format!(
        "{}/{} {}",
        trail.namespace, trail.pod, trail.debug_container
    );
    let created = recording::Recording::create(
        &path,
        interactive,
        header_size(interactive),
        &title,
        options,
    )
    .and_then(|recording| {
        let record = SessionRecord {
            api_version: "distroless-debug/v1".into(),
            kind: "SessionRecord".into(),
            id,
            context: options.context.clone(),
            namespace: trail.namespace.clone(),
            pod: trail.pod.clone(),
            target: trail.target.clone(),
            debug_container: trail.debug_container.clone(),
            image: trail.image.clone(),
            profile: trail.profile.clone(),
            user: trail.user.clone(),
            reason: trail.reason.clone(),
            interactive,
            start: start.to_string(),
            recording: Some(path.clone()),
            stderr_recording: recording.stderr_path.clone(),
            ..SessionRecord::default()
        };
        recording::write_record(&dir, &record)?;
        Ok(Local {
            recording: Arc::new(recording),
            record,
            dir,
        })
    });
    match created {
        Ok(local) => Some(local),
        Err(e) => {
            printer.note(&format!(
                "not recorded: cannot write {} ({e}); --no-record turns recording off",
                path.display()
            ));
            None
        }
    }
}
