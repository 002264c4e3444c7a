//! What participants report about themselves: media flags (muted, camera, screen share),
//! client-side recordings made visible to everyone in the call, and quality samples.

use super::{CallService, CallView};
use crate::AuthContext;
use sc_core::{
    AppError, AppResult,
    ids::{CallId, FileId, SessionId, UserId},
    time::Timestamp,
};
use sc_db::calls::{MediaChange, QualityRow, RecordingOutcome};
use serde::Serialize;
use std::{collections::BTreeMap, time::Duration};
use utoipa::ToSchema;

/// Samples one session may post per minute.
const QUALITY_SAMPLES_PER_MINUTE: u32 = 60;
/// How long after leaving a session may still report the call's quality.
const QUALITY_AFTER_LEAVING: Duration = Duration::from_secs(30);
/// Samples a summary is computed from at most (the newest).
const QUALITY_SUMMARY_SAMPLES: i64 = 10_000;

pub struct MediaRequest {
    pub audio: Option<bool>,
    pub video: Option<bool>,
    pub screen: Option<bool>,
}

pub enum RecordingAction {
    Start,
    Stop,
}

/// One quality sample: WebRTC statistics as the client reads them.
pub struct QualitySample {
    pub rtt_ms: f64,
    pub jitter_ms: f64,
    /// Fraction of packets lost, 0 to 1.
    pub packet_loss: f64,
    pub bitrate_kbps: f64,
}

#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Stat {
    pub mean: f64,
    pub p95: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QualityStats {
    pub samples: usize,
    pub rtt_ms: Stat,
    pub jitter_ms: Stat,
    pub packet_loss: Stat,
    pub bitrate_kbps: Stat,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ParticipantQuality {
    #[schema(value_type = uuid::Uuid)]
    pub user_id: UserId,
    #[schema(value_type = uuid::Uuid)]
    pub session_id: SessionId,
    #[serde(flatten)]
    pub stats: QualityStats,
}

/// `GET /v1/calls/{id}/quality`: per participant session and for the whole call.
#[derive(Debug, Serialize, ToSchema)]
pub struct QualitySummary {
    pub call: QualityStats,
    pub participants: Vec<ParticipantQuality>,
}

fn stat(mut v: Vec<f64>) -> Stat {
    if v.is_empty() {
        return Stat::default();
    }
    v.sort_by(f64::total_cmp);
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    // Nearest rank.
    let rank = ((0.95 * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Stat {
        mean,
        p95: v[rank - 1],
    }
}

fn stats(rows: &[&QualityRow]) -> QualityStats {
    let col = |f: fn(&QualityRow) -> f64| rows.iter().map(|r| f(r)).collect::<Vec<_>>();
    QualityStats {
        samples: rows.len(),
        rtt_ms: stat(col(|r| r.rtt_ms)),
        jitter_ms: stat(col(|r| r.jitter_ms)),
        packet_loss: stat(col(|r| r.packet_loss)),
        bitrate_kbps: stat(col(|r| r.bitrate_kbps)),
    }
}

impl QualitySample {
    fn check(&self) -> AppResult<()> {
        let within = |field: &str, v: f64, max: f64| {
            if v.is_finite() && (0.0..=max).contains(&v) {
                Ok(())
            } else {
                Err(AppError::validation(field, format!("0 to {max}")))
            }
        };
        within("rtt_ms", self.rtt_ms, 60_000.0)?;
        within("jitter_ms", self.jitter_ms, 60_000.0)?;
        within("packet_loss", self.packet_loss, 1.0)?;
        within("bitrate_kbps", self.bitrate_kbps, 1_000_000.0)
    }
}

fn not_in() -> AppError {
    AppError::conflict("this session is not in the call")
}

impl CallService {
    /// Sets the calling session's media flags; everyone sees them in `call.updated`.
    pub async fn set_media(
        &self,
        ctx: &AuthContext,
        id: CallId,
        m: MediaRequest,
    ) -> AppResult<CallView> {
        self.call_for(ctx, id).await?;
        if m.audio.is_none() && m.video.is_none() && m.screen.is_none() {
            return Err(AppError::validation("audio", "give audio, video or screen"));
        }
        let change = MediaChange {
            audio: m.audio,
            video: m.video,
            screen: m.screen,
        };
        if !self
            .d
            .db
            .calls()
            .set_media(id, ctx.session_id, change)
            .await?
        {
            return Err(not_in());
        }
        self.announce_current(id).await
    }

    /// Starts or stops a client-side recording. Starting takes the call's one recording slot
    /// (409 while someone else records); only the recorder stops it. Leaving or the call's end
    /// stops it too. Each change is a `call.updated` every participant sees.
    pub async fn recording(
        &self,
        ctx: &AuthContext,
        id: CallId,
        action: RecordingAction,
    ) -> AppResult<CallView> {
        self.call_for(ctx, id).await?;
        let calls = self.d.db.calls();
        let now = Timestamp::now();
        let outcome = match action {
            RecordingAction::Start => {
                calls
                    .start_recording(id, ctx.user_id, ctx.session_id, now)
                    .await?
            }
            RecordingAction::Stop => calls.stop_recording(id, ctx.user_id, now).await?,
        };
        match (outcome, action) {
            (RecordingOutcome::Ok, _) => {}
            (RecordingOutcome::Busy, RecordingAction::Start) => {
                return Err(AppError::conflict("someone is recording this call already"));
            }
            (RecordingOutcome::Busy, RecordingAction::Stop) => {
                return Err(AppError::conflict("you are not recording this call"));
            }
            (RecordingOutcome::NotIn, _) => return Err(not_in()),
        }
        self.announce_current(id).await
    }

    /// Attaches the file a recorder uploaded to their latest finished recording of the call;
    /// the call's participants may then read it. The file must be the recorder's own and ready.
    pub async fn attach_recording(
        &self,
        ctx: &AuthContext,
        id: CallId,
        file: FileId,
    ) -> AppResult<CallView> {
        self.call_for(ctx, id).await?;
        let owned = self
            .d
            .db
            .drive()
            .file(file)
            .await?
            .is_some_and(|f| f.owner_id == ctx.user_id);
        if !owned {
            return Err(AppError::Forbidden(
                "a recording is a file of your own drive".into(),
            ));
        }
        crate::drive::access::check_attachable(&self.d, ctx.user_id, &[file]).await?;
        if !self
            .d
            .db
            .calls()
            .attach_recording(id, ctx.user_id, file)
            .await?
        {
            return Err(AppError::conflict(
                "you have no finished recording of this call without a file",
            ));
        }
        self.announce_current(id).await
    }

    /// Stores a quality sample of the calling session (a participant), and counts it in the
    /// Prometheus histograms.
    pub async fn add_quality(
        &self,
        ctx: &AuthContext,
        id: CallId,
        q: QualitySample,
    ) -> AppResult<()> {
        self.call_for(ctx, id).await?;
        q.check()?;
        self.d
            .within_limit(
                "call_quality",
                &format!("call-quality:{}", ctx.session_id),
                QUALITY_SAMPLES_PER_MINUTE,
                Duration::from_secs(60),
            )
            .await?;
        let row = QualityRow {
            session_id: ctx.session_id,
            user_id: ctx.user_id,
            rtt_ms: q.rtt_ms,
            jitter_ms: q.jitter_ms,
            packet_loss: q.packet_loss,
            bitrate_kbps: q.bitrate_kbps,
        };
        let now = Timestamp::now();
        // A sample measured just before its session left (or the call ended) still counts:
        // clients report every few seconds, so the last one often arrives after the leave.
        let left_after = Timestamp(now.millis() - QUALITY_AFTER_LEAVING.as_millis() as i64);
        if !self
            .d
            .db
            .calls()
            .add_quality(id, ctx.session_id, &row, now, left_after)
            .await?
        {
            return Err(not_in());
        }
        let m = &self.d.metrics;
        m.call_rtt_ms.observe(q.rtt_ms);
        m.call_jitter_ms.observe(q.jitter_ms);
        m.call_packet_loss.observe(q.packet_loss);
        m.call_bitrate_kbps.observe(q.bitrate_kbps);
        Ok(())
    }

    /// Mean and p95 of each measure, per participant session and for the call (member only).
    pub async fn quality_summary(
        &self,
        ctx: &AuthContext,
        id: CallId,
    ) -> AppResult<QualitySummary> {
        self.call_for(ctx, id).await?;
        let rows = self
            .d
            .db
            .calls()
            .quality(id, QUALITY_SUMMARY_SAMPLES)
            .await?;
        let mut by_session: BTreeMap<SessionId, Vec<&QualityRow>> = BTreeMap::new();
        for r in &rows {
            by_session.entry(r.session_id).or_default().push(r);
        }
        let participants = by_session
            .into_values()
            .map(|rs| ParticipantQuality {
                user_id: rs[0].user_id,
                session_id: rs[0].session_id,
                stats: stats(&rs),
            })
            .collect();
        Ok(QualitySummary {
            call: stats(&rows.iter().collect::<Vec<_>>()),
            participants,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_nearest_rank_p95() {
        let s = stat((1..=100).map(f64::from).collect());
        assert_eq!(s.mean, 50.5);
        assert_eq!(s.p95, 95.0);
        let one = stat(vec![7.0]);
        assert_eq!((one.mean, one.p95), (7.0, 7.0));
        let none = stat(vec![]);
        assert_eq!((none.mean, none.p95), (0.0, 0.0));
    }

    #[test]
    fn samples_are_bounded() {
        let ok = QualitySample {
            rtt_ms: 40.0,
            jitter_ms: 3.0,
            packet_loss: 0.01,
            bitrate_kbps: 900.0,
        };
        assert!(ok.check().is_ok());
        for bad in [
            QualitySample { rtt_ms: -1.0, ..ok },
            QualitySample {
                packet_loss: 1.5,
                ..ok
            },
            QualitySample {
                jitter_ms: f64::NAN,
                ..ok
            },
            QualitySample {
                bitrate_kbps: f64::INFINITY,
                ..ok
            },
        ] {
            assert!(bad.check().is_err());
        }
    }
}
