//! What the SDK's MLS work costs on this machine in a group of `members` devices: adding them
//! in one commit, joining from the welcome, building and processing a commit, and encrypting and
//! decrypting a message, against one Ed25519 signature of the same message measured in the same
//! run (so the figures travel between machines as ratios). Used by `secureconnect bench mls`.

use crate::device::{CIPHERSUITE, credential_for};
use crate::groups::{create_config, join_config};
use crate::provider::Provider;
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_traits::signatures::Signer;
use std::time::{Duration, Instant};
use uuid::Uuid;

#[derive(Debug)]
pub struct GroupTimings {
    pub members: usize,
    /// One commit adding every other device, built and merged by the creator.
    pub add_all: Duration,
    /// A new member turning the welcome into its group.
    pub join_welcome: Duration,
    /// A self-update commit: building it, and another member processing it (averages).
    pub build_commit: Duration,
    pub process_commit: Duration,
    /// One 1 KiB application message (averages).
    pub encrypt: Duration,
    pub decrypt: Duration,
    /// Baseline: one Ed25519 signature over the same 1 KiB.
    pub sign: Duration,
}

struct Party {
    provider: Provider,
    signer: SignatureKeyPair,
    credential: CredentialWithKey,
}

fn party() -> Result<Party, String> {
    let signer =
        SignatureKeyPair::new(CIPHERSUITE.signature_algorithm()).map_err(|e| format!("{e:?}"))?;
    let credential = CredentialWithKey {
        credential: credential_for(Uuid::new_v4()),
        signature_key: signer.public().into(),
    };
    Ok(Party {
        provider: Provider::default(),
        signer,
        credential,
    })
}

fn e(x: impl std::fmt::Debug) -> String {
    format!("{x:?}")
}

fn average(total: Duration, n: u32) -> Duration {
    total / n.max(1)
}

/// Measures a group of `members` devices; `rounds` commits and messages are averaged.
pub fn group_timings(members: usize, rounds: u32) -> Result<GroupTimings, String> {
    let creator = party()?;
    let member = party()?;
    let mut packages = Vec::with_capacity(members.saturating_sub(1));
    let member_kp = KeyPackage::builder()
        .build(
            CIPHERSUITE,
            &member.provider,
            &member.signer,
            member.credential.clone(),
        )
        .map_err(e)?;
    packages.push(member_kp.key_package().clone());
    for _ in 2..members {
        let p = party()?;
        let kp = KeyPackage::builder()
            .build(CIPHERSUITE, &p.provider, &p.signer, p.credential.clone())
            .map_err(e)?;
        packages.push(kp.key_package().clone());
    }
    let mut group = MlsGroup::new(
        &creator.provider,
        &creator.signer,
        &create_config(),
        creator.credential.clone(),
    )
    .map_err(e)?;

    let t = Instant::now();
    let (_, welcome, _) = group
        .add_members(&creator.provider, &creator.signer, &packages)
        .map_err(e)?;
    group.merge_pending_commit(&creator.provider).map_err(e)?;
    let add_all = t.elapsed();

    let welcome: MlsMessageIn = welcome.into();
    let MlsMessageBodyIn::Welcome(welcome) = welcome.extract() else {
        return Err("no welcome".into());
    };
    let t = Instant::now();
    let mut joined =
        StagedWelcome::new_from_welcome(&member.provider, &join_config(), welcome, None)
            .map_err(e)?
            .into_group(&member.provider)
            .map_err(e)?;
    let join_welcome = t.elapsed();

    let (mut build, mut process) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..rounds {
        let t = Instant::now();
        let bundle = group
            .commit_builder()
            .force_self_update(true)
            .load_psks(creator.provider.storage())
            .map_err(e)?
            .build(
                creator.provider.rand(),
                creator.provider.crypto(),
                &creator.signer,
                |_| true,
            )
            .map_err(e)?
            .stage_commit(&creator.provider)
            .map_err(e)?;
        group.merge_pending_commit(&creator.provider).map_err(e)?;
        build += t.elapsed();
        let commit: MlsMessageIn = bundle.into_commit().into();
        let t = Instant::now();
        let processed = joined
            .process_message(
                &member.provider,
                commit.try_into_protocol_message().map_err(e)?,
            )
            .map_err(e)?;
        let ProcessedMessageContent::StagedCommitMessage(staged) = processed.into_content() else {
            return Err("expected a commit".into());
        };
        joined
            .merge_staged_commit(&member.provider, *staged)
            .map_err(e)?;
        process += t.elapsed();
    }

    let payload = vec![0x5a_u8; 1024];
    let (mut enc, mut dec, mut sign) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for _ in 0..rounds {
        let t = Instant::now();
        let out = group
            .create_message(&creator.provider, &creator.signer, &payload)
            .map_err(e)?;
        enc += t.elapsed();
        let msg: MlsMessageIn = out.into();
        let t = Instant::now();
        let processed = joined
            .process_message(
                &member.provider,
                msg.try_into_protocol_message().map_err(e)?,
            )
            .map_err(e)?;
        dec += t.elapsed();
        if !matches!(
            processed.into_content(),
            ProcessedMessageContent::ApplicationMessage(_)
        ) {
            return Err("expected an application message".into());
        }
        let t = Instant::now();
        creator.signer.sign(&payload).map_err(e)?;
        sign += t.elapsed();
    }
    Ok(GroupTimings {
        members,
        add_all,
        join_welcome,
        build_commit: average(build, rounds),
        process_commit: average(process, rounds),
        encrypt: average(enc, rounds),
        decrypt: average(dec, rounds),
        sign: average(sign, rounds),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_small_group_is_measured_end_to_end() {
        let t = super::group_timings(3, 2).unwrap();
        assert_eq!(t.members, 3);
        assert!(t.decrypt > std::time::Duration::ZERO);
    }
}
