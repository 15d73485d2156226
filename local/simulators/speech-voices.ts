import { sendJson } from './http';
import type { RestAnswer } from './speech-session';

/** The voice list (`GET /cognitiveservices/voices/list`), which clients use as a health probe. */

const VOICES = [
  ['en-US', 'JennyNeural', 'Jenny', 'Female', 'English (United States)'],
  ['en-US', 'GuyNeural', 'Guy', 'Male', 'English (United States)'],
  ['en-GB', 'SoniaNeural', 'Sonia', 'Female', 'English (United Kingdom)'],
  ['de-DE', 'KatjaNeural', 'Katja', 'Female', 'German (Germany)'],
  ['fr-FR', 'DeniseNeural', 'Denise', 'Female', 'French (France)'],
  ['ja-JP', 'NanamiNeural', 'Nanami', 'Female', 'Japanese (Japan)'],
].map(([locale, name, display, gender, localeName]) => ({
  Name: `Microsoft Server Speech Text to Speech Voice (${locale}, ${name})`,
  DisplayName: display,
  LocalName: display,
  ShortName: `${locale}-${name}`,
  Gender: gender,
  Locale: locale,
  LocaleName: localeName,
  SampleRateHertz: '24000',
  VoiceType: 'Neural',
  Status: 'GA',
  WordsPerMinute: '150',
}));

export const voiceList: RestAnswer = (res, session, headers) =>
  sendJson(res, 200, VOICES, headers, session.cut);
